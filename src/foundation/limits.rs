//! Bounded reads of everything that comes from outside: a file the user names, an HTTP answer,
//! a command's output. Nothing is read whole before its size is known to be sane; each limit's
//! error names the source and the limit, so a hostile or broken peer (an endless body, a config
//! path pointing at `/dev/zero`) costs at most the limit in memory, never the machine.

use std::io::Read;
use std::path::Path;

/// A read that stopped at its limit, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{what} is larger than {limit} bytes, the most homelab reads from it")]
    TooLarge { what: String, limit: u64 },
    #[error("{what} is not a regular file ({kind})")]
    NotRegular { what: String, kind: &'static str },
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl LimitError {
    /// The underlying I/O error kind, for callers that explain a missing file differently.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            LimitError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_fifo() {
            return "a named pipe";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() { "a directory" } else { "not a file" }
}

/// Reads a regular file (symlinks followed) of at most `limit` bytes. Devices, pipes and
/// directories are refused before a byte is read.
pub fn read_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, LimitError> {
    let io = |source| LimitError::Io { what: what.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(LimitError::NotRegular { what: what.to_owned(), kind: kind_of(meta.file_type()) });
    }
    if meta.len() > limit {
        return Err(LimitError::TooLarge { what: what.to_owned(), limit });
    }
    let mut out = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the stat and the read: the cap holds either way.
    file.take(limit + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > limit {
        return Err(LimitError::TooLarge { what: what.to_owned(), limit });
    }
    Ok(out)
}

/// [`read_file`] as UTF-8 text.
pub fn read_text(path: &Path, limit: u64, what: &str) -> Result<String, LimitError> {
    let bytes = read_file(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| LimitError::Io {
        what: what.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")),
    })
}

/// An HTTP answer's body, streamed, stopping as soon as it passes `limit` bytes (a declared
/// `Content-Length` above the limit is refused before the body is read).
pub async fn read_body(mut resp: reqwest::Response, limit: u64, what: &str) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { what: what.to_owned(), limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge { what: what.to_owned(), limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Why an HTTP body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer to {what} is larger than {limit} bytes, the most homelab reads from it")]
    TooLarge { what: String, limit: u64 },
    #[error(transparent)]
    Transport(reqwest::Error),
}

/// Reads at most `limit` bytes of a stream; `Ok(None)` when it had more (the rest is drained
/// and dropped so the writer does not block, but never kept).
pub async fn read_stream<R: tokio::io::AsyncRead + Unpin>(r: &mut R, limit: u64) -> std::io::Result<(Vec<u8>, bool)> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut over = false;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((out, over));
        }
        if !over {
            let room = (limit as usize).saturating_sub(out.len());
            out.extend_from_slice(&buf[..n.min(room)]);
            over = n > room;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_capped_and_must_be_regular() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_file(&p, 5, "f").unwrap(), b"12345");
        let e = read_file(&p, 4, "the file f").unwrap_err().to_string();
        assert_eq!(e, "the file f is larger than 4 bytes, the most homelab reads from it");
        let e = read_file(dir.path(), 4, "d").unwrap_err().to_string();
        assert!(e.contains("not a regular file (a directory)"), "{e}");
        #[cfg(unix)]
        {
            let e = read_file(Path::new("/dev/zero"), 1 << 20, "/dev/zero").unwrap_err().to_string();
            assert!(e.contains("a character device"), "{e}");
        }
    }

    #[tokio::test]
    async fn streams_keep_at_most_the_limit() {
        let data = vec![7u8; 100_000];
        let (kept, over) = read_stream(&mut &data[..], 1000).await.unwrap();
        assert_eq!(kept.len(), 1000);
        assert!(over);
        let (kept, over) = read_stream(&mut &data[..10], 1000).await.unwrap();
        assert_eq!((kept.len(), over), (10, false));
    }
}
