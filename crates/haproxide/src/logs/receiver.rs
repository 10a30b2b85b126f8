//! The socket HAProxy logs to: bound by the daemon (a stale socket file
//! replaced, never another kind of file), its mode and owner applied, a
//! large receive buffer, and read many datagrams per system call
//! (`recvmmsg`) into [`Batch`]es for the parsers. The reader never waits for
//! later stages: a batch that finds the parsers' queue full is dropped and
//! counted.

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Sender, TrySendError};
use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg, setsockopt, sockopt};
use nix::unistd::{Group, User, chown};

use super::config::SocketSettings;
use super::metrics::{Metrics, Stage};

/// Datagrams read together, as they came.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// Where each datagram ends in `bytes`, and whether it was cut.
    ends: Vec<(usize, bool)>,
    /// When its first datagram was read.
    pub received: Option<Instant>,
}

impl Batch {
    /// Adds a datagram (`cut`: longer than the reader's buffer).
    pub fn push(&mut self, datagram: &[u8], cut: bool) {
        if self.ends.is_empty() {
            self.received = Some(Instant::now());
        }
        self.bytes.extend_from_slice(datagram);
        self.ends.push((self.bytes.len(), cut));
    }

    /// How many datagrams it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each datagram, and whether it was cut.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], bool)> {
        let mut start = 0;
        self.ends.iter().map(move |&(end, cut)| {
            let datagram = &self.bytes[start..end];
            start = end;
            (datagram, cut)
        })
    }
}

/// Binds the socket of `settings`: replaces a stale socket file (and
/// refuses to remove anything else), applies mode, owner and receive buffer.
pub fn bind(settings: &SocketSettings) -> anyhow::Result<UnixDatagram> {
    let path = &settings.path;
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            std::fs::remove_file(path).with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
        }
        Ok(_) => anyhow::bail!("{} exists and is not a socket: not removing it", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot look at {}", path.display())),
    }
    let socket = UnixDatagram::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(settings.mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    apply_owner(path, settings)?;
    // The kernel caps SO_RCVBUF at net.core.rmem_max; SO_RCVBUFFORCE goes
    // beyond it with CAP_NET_ADMIN. Whatever it gives is logged.
    if setsockopt(&socket, sockopt::RcvBufForce, &settings.receive_buffer).is_err() {
        setsockopt(&socket, sockopt::RcvBuf, &settings.receive_buffer).context("cannot set SO_RCVBUF")?;
    }
    // Reads wake up at least this often, to see a stop and flush a batch.
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    // Linux reports twice what it grants (the rest is its bookkeeping).
    let granted = nix::sys::socket::getsockopt(&socket, sockopt::RcvBuf).unwrap_or_default() / 2;
    // Whatever the buffer, the kernel queues at most this many datagrams on
    // a unix socket; HAProxy drops the next ones (its DroppedLogs).
    if let Some(queue) = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|queue| *queue < 512)
    {
        tracing::warn!(
            "net.unix.max_dgram_qlen is {queue}: the kernel holds no more datagrams than that while the reader \
             is busy, and HAProxy drops the rest; raise it (sysctl -w net.unix.max_dgram_qlen=4096)"
        );
    }
    tracing::info!(
        "listening on {} (mode {:04o}, receive buffer {granted} bytes of {} asked)",
        path.display(),
        settings.mode,
        settings.receive_buffer
    );
    Ok(socket)
}

fn apply_owner(path: &Path, settings: &SocketSettings) -> anyhow::Result<()> {
    let user = match &settings.user {
        Some(name) => Some(
            User::from_name(name)?
                .with_context(|| format!("[logs-socket] user: no user {name:?}"))?
                .uid,
        ),
        None => None,
    };
    let group = match &settings.group {
        Some(name) => Some(
            Group::from_name(name)?
                .with_context(|| format!("[logs-socket] group: no group {name:?}"))?
                .gid,
        ),
        None => None,
    };
    if user.is_some() || group.is_some() {
        chown(path, user, group)
            .with_context(|| format!("cannot change the owner of {} (CAP_CHOWN?)", path.display()))?;
    }
    Ok(())
}

/// Datagrams asked for per `recvmmsg` call.
const PER_CALL: usize = 64;

/// Reads `socket` until `metrics` says stop and the kernel holds nothing
/// more, handing full batches (or partial ones after `deadline`) to
/// `parsers`.
pub fn read(socket: &UnixDatagram, settings: &SocketSettings, parsers: &Sender<Batch>, metrics: &Arc<Metrics>) {
    let size = settings.max_datagram;
    let mut buffer = vec![0u8; PER_CALL * size];
    let mut headers = MultiHeaders::<()>::preallocate(PER_CALL, None);
    let mut batch = Batch::default();
    let hand_on = |batch: &mut Batch| {
        let full = std::mem::take(batch);
        let count = full.len() as u64;
        match parsers.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => metrics.saturated(Stage::Parser, count),
        }
    };
    // On a stop (the socket's file already removed, so nothing new comes),
    // what the kernel still holds is read without waiting, then no more.
    let mut draining = false;
    loop {
        if !draining && metrics.stopping.load(Ordering::Relaxed) {
            draining = true;
        }
        metrics.beat(Stage::Receiver);
        let mut slices: Vec<[std::io::IoSliceMut<'_>; 1]> = buffer
            .chunks_mut(size)
            .map(|chunk| [std::io::IoSliceMut::new(chunk)])
            .collect();
        match recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            if draining {
                MsgFlags::MSG_DONTWAIT
            } else {
                MsgFlags::MSG_WAITFORONE
            },
            None,
        ) {
            Ok(results) => {
                let mut received = 0u64;
                let lengths: Vec<(usize, bool)> = results
                    .map(|message| (message.bytes, message.flags.contains(MsgFlags::MSG_TRUNC)))
                    .collect();
                for (slot, (length, cut)) in lengths.into_iter().enumerate() {
                    let start = slot * size;
                    batch.push(&buffer[start..start + length.min(size)], cut);
                    received += 1;
                    if batch.len() >= settings.batch_size {
                        hand_on(&mut batch);
                    }
                }
                metrics.received.fetch_add(received, Ordering::Relaxed);
            }
            Err(nix::errno::Errno::EAGAIN) if draining => break,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(error) => {
                tracing::error!("reading the log socket: {error}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if batch
            .received
            .is_some_and(|first| first.elapsed() >= settings.batch_deadline)
        {
            hand_on(&mut batch);
        }
    }
    if !batch.is_empty() {
        hand_on(&mut batch);
    }
}
