# Shared by the repository's scripts (sourced, not run): root or sudo, Debian
# packages installed on demand, a private apt for peers, the release binary, and a temporary lab
# directory whose processes are stopped and files removed on exit.

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the named Debian packages that are not installed yet.
need_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return
    echo "== installing ${missing[*]} (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# An apt of its own in directory $1 with one sources line, "$2 MIRROR $3 main"
# ($2 `deb` or `deb-src`, $3 a suite such as bullseye) on this machine's
# Debian mirror, leaving the system's apt state untouched; sets APT_OPTIONS,
# the apt-get options that use it. For peers fetched into the cache.
private_apt() {
    local dir=$1 kind=$2 suite=$3 mirror
    mkdir -p "$dir/lists/partial" "$dir/archives/partial"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    [ -n "$mirror" ] || { echo "no Debian mirror found in /etc/apt" >&2; return 1; }
    echo "$kind $mirror $suite main" >"$dir/sources.list"
    APT_OPTIONS=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::Archives=$dir/archives"
        -o Debug::NoLocking=1)
}

# Fetches Debian package $2 of suite $1 (bookworm, bullseye) once into the
# cache directory $3 with a private apt, extracts it there with dpkg -x (it is
# never installed), and checks that $3/$4 runs with argument $5. For peers
# the tests run that Debian packages but the machine does not have.
fetch_deb() {
    local suite=$1 package=$2 cache=$3 binary=$3/$4 probe=$5 deb
    if [ -x "$binary" ] && "$binary" "$probe" >/dev/null 2>&1; then
        return
    fi
    private_apt "$cache/apt" deb "$suite"
    echo "== fetching $package (Debian $suite's package)" >&2
    {
        apt-get "${APT_OPTIONS[@]}" -qq update &&
            (cd "$cache/apt" && apt-get "${APT_OPTIONS[@]}" -qq download "$package")
    } >"$cache/apt.log" 2>&1 || { cat "$cache/apt.log" >&2; echo "$package did not download" >&2; return 1; }
    deb=$(ls "$cache/apt/${package}"_*.deb | head -1)
    dpkg -x "$deb" "$cache"
    "$binary" "$probe" 2>&1 | head -1 >&2
}

need_cargo() {
    command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup) first" >&2; exit 1; }
}

# Builds the release binary; sets BIN.
build_release() {
    need_cargo
    cargo build --release --quiet -p haproxide
    BIN=$PWD/target/release/haproxide
}

# Installs PyPI packages in a cached venv named $1 (the rest: pip
# requirements); sets VENV_DIR.
need_venv() {
    local name=$1
    shift
    need_packages python3-venv
    VENV_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide-bench/$name
    if [ ! -e "$VENV_DIR/.installed" ]; then
        echo "== installing $* in $VENV_DIR"
        python3 -m venv "$VENV_DIR"
        "$VENV_DIR/bin/pip" install -q "$@"
        touch "$VENV_DIR/.installed"
    fi
}

# haproxystats 0.5.1, the program pull and process replace, with the
# pandas<2 and numpy<2 it needs; sets HAPROXYSTATS_VENV.
need_haproxystats() {
    need_venv hs-venv "pandas<2" "numpy<2" "haproxystats==0.5.1"
    HAPROXYSTATS_VENV=$VENV_DIR
}

# A loopback port nobody answers on right now.
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    echo "no free port found" >&2; exit 1
}

# Nanoseconds since the epoch; whole milliseconds between two of them.
now_ns() { date +%s%N; }
ms_between() { echo $(( ($2 - $1) / 1000000 )); }

# The median of the numbers given (the lower middle one of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Makes a temporary directory for a lab (sets DIR, with DIR/run for stats
# sockets); PIDS collects processes to stop when the script exits.
start_lab() {
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    trap stop_lab EXIT
    mkdir -p "$DIR/run"
}

# What a benchmark over one round needs: ROUND (made absolute) and RUNS
# (default 5) from its command line, a release build, a lab named $1 and
# haproxystats to compare with.
start_round_bench() {
    local name=$1
    shift
    ROUND=${1:?usage: bash $0 ROUND_DIR [RUNS]}
    ROUND=$(cd "$ROUND" && pwd)
    RUNS=${2:-5}
    build_release
    start_lab "$name"
    need_haproxystats
}

# Writes to stdout a HAProxy configuration of the benchmark generator's
# shape: 200 frontends (on abstract sockets), 1,000 backends x 10 servers
# (at 127.0.0.1:9, never checked), and a stats socket at $1. $2, if given,
# is more configuration after the defaults (a PROMEX frontend, say).
generator_shaped_haproxy() {
    printf 'global\n    stats socket %s mode 600 level admin\n    stats timeout 30s\n' "$1"
    printf 'defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n'
    printf '%s' "${2:-}"
    local tag
    tag=$(basename "$1" .sock)_$$ # abstract socket names are machine-wide
    for f in $(seq 1 200); do printf 'frontend fe_%s\n    bind abns@fe_%s_%s\n    default_backend be_%s\n' "$f" "$f" "$tag" "$f"; done
    for b in $(seq 1 1000); do
        printf 'backend be_%s\n' "$b"
        for s in $(seq 1 10); do printf '    server srv_%s 127.0.0.1:9\n' "$s"; done
    done
}

stop_lab() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
