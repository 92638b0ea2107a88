//! A lean HTTP/1.1 keep-alive client for the http workload: one GET
//! written, one response read and framed by Content-Length, per round.
//! It costs about what ab's client costs per request, so the server and
//! the path, not the client, limit the rate (hyper's client connection
//! hands each request through a channel to a driver task, twice the
//! wake-ups).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What went wrong with one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("connection: {0}")]
    Io(String),
    #[error("server closed the connection")]
    Closed,
    #[error("status {0}")]
    Status(u16),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// A keep-alive connection to one server.
pub struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects within `timeout` (from the calling thread's namespace).
    pub async fn open(target: SocketAddr, timeout: Duration) -> std::io::Result<Connection> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(target))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            request: format!("GET / HTTP/1.1\r\nHost: {target}\r\nUser-Agent: dplab\r\n\r\n")
                .into_bytes(),
            buf: Vec::with_capacity(4096),
        })
    }

    /// The socket, so a watchdog can shut it down when a request overruns.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.stream.as_raw_fd()
    }

    /// Sends one GET and reads its whole response.
    pub async fn get(&mut self) -> Result<(), RequestError> {
        let io = |e: std::io::Error| RequestError::Io(e.to_string());
        self.stream.write_all(&self.request).await.map_err(io)?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(total) = complete_response_len(&self.buf)? {
                if total != self.buf.len() {
                    return Err(RequestError::Malformed("bytes after the response"));
                }
                let status = status_code(&self.buf)?;
                return if status == 200 {
                    Ok(())
                } else {
                    Err(RequestError::Status(status))
                };
            }
            let n = self.stream.read(&mut chunk).await.map_err(io)?;
            if n == 0 {
                return Err(RequestError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The status code of a response head.
pub fn status_code(response: &[u8]) -> Result<u16, RequestError> {
    let line = response
        .split(|b| *b == b'\n')
        .next()
        .ok_or(RequestError::Malformed("no status line"))?;
    let code = line
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.trim().parse().ok())
        .ok_or(RequestError::Malformed("no status code"))?;
    if line.starts_with(b"HTTP/1.") {
        Ok(code)
    } else {
        Err(RequestError::Malformed("not HTTP/1.x"))
    }
}

/// The length of the whole response (head + Content-Length body) once
/// `buf` holds all of it; None while more bytes are needed.
pub fn complete_response_len(buf: &[u8]) -> Result<Option<usize>, RequestError> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| RequestError::Malformed("head is not UTF-8"))?;
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| RequestError::Malformed("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::Malformed("chunked responses unsupported"));
        }
    }
    let body = length.ok_or(RequestError::Malformed("no Content-Length"))?;
    let total = head_end + 4 + body;
    Ok((buf.len() >= total).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: Sun, 22 Nov 2026 17:00:00 GMT\r\n\r\nhello";

    #[test]
    fn frames_by_content_length() {
        assert_eq!(complete_response_len(OK), Ok(Some(OK.len())));
        assert_eq!(complete_response_len(&OK[..OK.len() - 1]), Ok(None));
        assert_eq!(complete_response_len(&OK[..20]), Ok(None));
        assert_eq!(status_code(OK), Ok(200));
    }

    #[test]
    fn rejects_what_it_cannot_frame() {
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(complete_response_len(chunked).is_err());
        assert!(complete_response_len(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert_eq!(
            status_code(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Ok(503)
        );
        assert!(status_code(b"SSH-2.0-OpenSSH\r\n").is_err());
    }
}
