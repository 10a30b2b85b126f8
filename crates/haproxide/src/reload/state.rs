//! Saving the servers' runtime state just before a reload: `show servers
//! state` written to HAProxy's `server-state-file`, which the new
//! configuration loads (`load-server-state-from-file`), so that addresses,
//! weights and drain/maint states set at run time survive the reload.
//!
//! The answer is parsed before it is written, and written atomically (a
//! temporary file beside the target, synced, then renamed over it): a
//! reload never loads half a state file or an error message.

use std::io::Write;
use std::path::Path;

use haproxy::{RuntimeClient, ServersState};

/// Writes `show servers state` (asked of `client` with the master-CLI
/// `prefix`) to `path`; returns how many servers it holds.
pub async fn save(client: &RuntimeClient, prefix: &str, path: &Path) -> Result<usize, String> {
    let reply = client
        .send(&format!("{prefix}show servers state"))
        .await
        .map_err(|error| error.to_string())?;
    if let Some(refusal) = reply.cli_error() {
        return Err(format!("{}: {refusal}", client.endpoint()));
    }
    let text = reply.text();
    let state = ServersState::parse(&text).map_err(|error| format!("{}: {error}", client.endpoint()))?;
    write_atomically(path, text.as_bytes()).map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(state.rows().len())
}

/// `bytes` in `path`, all or nothing. Only a regular file is replaced: a
/// state file set to a device or a directory by mistake is refused, not
/// renamed over.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Ok(existing) = std::fs::symlink_metadata(path)
        && !existing.file_type().is_file()
    {
        return Err(std::io::Error::other("exists and is not a regular file; not replaced"));
    }
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| std::fs::rename(&temporary, path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    std::fs::File::open(dir).and_then(|dir| dir.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("servers.state");
        std::fs::write(&path, "old\n").unwrap();
        write_atomically(&path, b"1\n# be_id be_name\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n# be_id be_name\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["servers.state"]);
        let missing_dir = dir.path().join("no/such/dir/servers.state");
        assert!(write_atomically(&missing_dir, b"1\n").is_err());
        let device = write_atomically(Path::new("/dev/null"), b"1\n").unwrap_err();
        assert_eq!(device.to_string(), "exists and is not a regular file; not replaced");
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }
}
