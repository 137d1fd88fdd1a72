//! A small SMTP server for tests: listens on 127.0.0.1:0, keeps every message it accepts
//! (the DATA bytes as received, dot-stuffing undone) and can be told to refuse recipients
//! with a given reply (e.g. `550 5.1.1 no such user` or `451 4.3.0 try later`).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct Sink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// A reply for RCPT TO instead of 250 (e.g. "550 5.1.1 unknown").
    refuse: Arc<Mutex<Option<String>>>,
}

impl Sink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink {
            port,
            ..Sink::default()
        };
        let shared = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = shared.clone();
                tokio::spawn(async move { s.session(stream).await });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn refuse_with(&self, reply: Option<&str>) {
        *self.refuse.lock().unwrap() = reply.map(str::to_owned);
    }

    async fn session(self, stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let _ = write.write_all(b"220 sink ESMTP\r\n").await;
        let mut from = String::new();
        let mut to = Vec::new();
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-sink\r\n250 8BITMIME\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().to_owned();
                to.clear();
                "250 ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                match self.refuse.lock().unwrap().clone() {
                    Some(refusal) => format!("{refusal}\r\n"),
                    None => {
                        to.push(line[8..].trim().to_owned());
                        "250 ok\r\n".into()
                    }
                }
            } else if upper.starts_with("DATA") {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if lines.read_until(b'\n', &mut raw).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if raw == b".\r\n" {
                        break;
                    }
                    if raw.starts_with(b"..") {
                        raw.remove(0);
                    }
                    data.extend_from_slice(&raw);
                }
                self.received.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                "250 queued\r\n".into()
            } else if upper.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                "250 ok\r\n".into()
            };
            if write.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}
