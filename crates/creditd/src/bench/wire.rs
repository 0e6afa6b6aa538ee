//! The load generator's HTTP client for debits: one kept-alive HTTP/1.1 connection per
//! client, requests written as bytes and answers read by `Content-Length` — what `wrk` does.
//! The load generator shares the machine (and, without `--target`, the process) with the
//! server, so every cycle it spends is one creditd does not get: a general client (reqwest:
//! URL parsing, a shared pool, header maps) measured ~10 % fewer debits/s in the `http` rows.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// One connection per client index, opened on first use and again after an error.
#[derive(Clone)]
pub struct Wire {
    /// `host:port`.
    addr: String,
    key: String,
    conns: Arc<Vec<Mutex<Option<BufReader<TcpStream>>>>>,
}

impl Wire {
    /// `None` unless `base` is plain `http://host:port` (no path): anything else goes through
    /// the general client.
    pub fn new(base: &str, key: &str, clients: usize) -> Option<Wire> {
        let addr = base.strip_prefix("http://")?.trim_end_matches('/');
        if addr.is_empty() || addr.contains('/') {
            return None;
        }
        Some(Wire {
            addr: addr.to_string(),
            key: key.to_string(),
            conns: Arc::new((0..clients).map(|_| Mutex::new(None)).collect()),
        })
    }

    /// `POST path` with a JSON body and an idempotency key on client `client`'s connection:
    /// the status code and the body.
    pub async fn post(
        &self,
        client: usize,
        path: &str,
        idempotency_key: &str,
        body: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut slot = self.conns[client].lock().await;
        if slot.is_none() {
            let stream = TcpStream::connect(&self.addr).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            *slot = Some(BufReader::new(stream));
        }
        let conn = slot.as_mut().expect("connected above");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nIdempotency-Key: {idempotency_key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.key,
            body.len()
        );
        match exchange(conn, request.as_bytes()).await {
            Ok(answer) => Ok(answer),
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }
}

/// Writes one request and reads its answer: status and body.
async fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
    conn.get_mut().write_all(request).await.map_err(|e| e.to_string())?;
    let mut line = String::new();
    conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let mut length = None;
    loop {
        line.clear();
        if conn.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("the connection closed mid-answer".into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.ok_or("an answer without Content-Length")?;
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::Wire;

    #[test]
    fn only_plain_http_origins() {
        assert!(Wire::new("http://127.0.0.1:8080", "k", 1).is_some());
        assert!(Wire::new("http://127.0.0.1:8080/", "k", 1).is_some());
        assert!(Wire::new("https://creditd.example", "k", 1).is_none());
        assert!(Wire::new("http://host/prefix", "k", 1).is_none());
    }
}
