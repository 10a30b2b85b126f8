#!/usr/bin/env bash
# Builds the Debian package target/debian/haproxide_<version>_<arch>.deb with
# dpkg-deb: the release binary and its compatibility names (symlinks), the
# systemd units of dist/systemd, the commented /etc/haproxide/haproxide.conf,
# man pages and bash/zsh/fish completions (the last three made by the binary
# from its own declarations: `haproxide generate`), the maintainer scripts
# and copyright of dist/debian. Then lintian checks it; any error fails.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
need_packages dpkg-dev lintian
build_release

version=$(sed -n 's/^version = "\(.*\)"/\1/p' crates/haproxide/Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
out=target/debian
stage=$out/stage
deb=$out/haproxide_${version}_${arch}.deb
rm -rf "$stage" "$deb"
mkdir -p "$stage/DEBIAN"

# The binary, stripped, and the names of the programs it replaces.
install -D -m 0755 "$BIN" "$stage/usr/bin/haproxide"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/haproxide"
for name in haproxystats-pull haproxystats-process ep2 haproxykafka datawave-haproxy-agent; do
    ln -s haproxide "$stage/usr/bin/$name"
done

# The units, and the sandbox drop-in every haproxide-*.service shares.
units=$stage/lib/systemd/system
install -d "$units/haproxide-.service.d"
install -m 0644 dist/systemd/*.service "$units/"
install -m 0644 dist/systemd/haproxide-.service.d/*.conf "$units/haproxide-.service.d/"

# Made by the binary from its declarations.
generated=$out/generated
rm -rf "$generated"
"$BIN" generate config "$stage/etc/haproxide"
chmod 0644 "$stage/etc/haproxide/haproxide.conf"
"$BIN" generate man "$generated/man"
install -d "$stage/usr/share/man/man1"
for page in "$generated"/man/*.1; do
    gzip -9n <"$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"
done
"$BIN" generate completions "$generated/completions"
install -D -m 0644 "$generated/completions/haproxide" "$stage/usr/share/bash-completion/completions/haproxide"
install -D -m 0644 "$generated/completions/_haproxide" "$stage/usr/share/zsh/vendor-completions/_haproxide"
install -D -m 0644 "$generated/completions/haproxide.fish" "$stage/usr/share/fish/vendor_completions.d/haproxide.fish"

# Documentation: copyright, the (native package's) changelog, the README;
# and what lintian is told about a false match.
doc=$stage/usr/share/doc/haproxide
install -D -m 0644 dist/debian/copyright "$doc/copyright"
install -D -m 0644 dist/debian/lintian-overrides "$stage/usr/share/lintian/overrides/haproxide"
gzip -9n <README.md >"$doc/README.md.gz"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
changed=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf '%s\n' "haproxide ($version) unstable; urgency=medium" "" \
    "  * Built from commit $commit of the haproxide repository." "" \
    " -- haproxide maintainers <haproxide@example.org>  $changed" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz" "$doc/README.md.gz" "$stage"/usr/share/man/man1/*.gz

# Control files.
install -m 0755 dist/debian/postinst dist/debian/prerm dist/debian/postrm "$stage/DEBIAN/"
echo /etc/haproxide/haproxide.conf >"$stage/DEBIAN/conffiles"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
shlibs=$(cd "$out" && mkdir -p debian && printf 'Source: haproxide\n\nPackage: haproxide\nArchitecture: any\n' >debian/control &&
    dpkg-shlibdeps -O "stage/usr/bin/haproxide" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
cat >"$stage/DEBIAN/control" <<CONTROL
Package: haproxide
Version: $version
Architecture: $arch
Maintainer: haproxide maintainers <haproxide@example.org>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $shlibs, adduser
Recommends: haproxy
Section: net
Priority: optional
Description: one binary for HAProxy operators: stats, agent, reloads, backends, logs
 haproxide does the jobs HAProxy operators glue together from side programs:
 a statistics pipeline (pull, process) to Graphite, Kafka and Prometheus that
 replaces haproxystats, an agent-check server, validated hitless reloads,
 backends that follow Consul, AWS Auto Scaling or a file (ElasticPyProxy's
 successor), request logs to Kafka as JSON (HAProxyKafka's successor), and
 Nagios/Icinga checks. The old programs' names (haproxystats-pull,
 haproxystats-process, ep2, haproxykafka, datawave-haproxy-agent) keep
 working with their own configuration files. Each daemon has a hardened
 systemd unit with readiness and a watchdog; none is enabled until configured.
CONTROL

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "== $deb ($(du -h "$deb" | cut -f1))"
echo "== lintian"
lintian --tag-display-limit 0 "$deb" | tee "$out/lintian.txt" || true
errors=$(grep -c '^E:' "$out/lintian.txt" || true)
echo "== lintian: $errors error(s), $(grep -c '^W:' "$out/lintian.txt" || true) warning(s)"
[ "$errors" -eq 0 ]
