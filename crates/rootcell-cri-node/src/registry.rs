//! A read-only OCI distribution registry (the pull side only) for the
//! node's images, in std: `GET /v2/`, `HEAD`/`GET /v2/<name>/manifests/<tag
//! or digest>` (with `Content-Type` and `Docker-Content-Digest`) and
//! `HEAD`/`GET /v2/<name>/blobs/<digest>`. containerd 1.6's `PullImage`
//! always asks a registry, even for an imported image; this one listens on
//! 127.0.0.1 inside containerd's network namespace, so nothing but the node
//! can reach it.

use crate::image::{Image, MANIFEST_TYPE};
use crate::netns::NetNs;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A running registry; stops accepting when dropped.
pub struct Registry {
    addr: SocketAddr,
    netns: NetNs,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Content {
    /// `<repo>:<tag>` and `<repo>@<digest>` -> manifest (digest, bytes).
    manifests: HashMap<String, (String, Vec<u8>)>,
    /// digest -> blob (the same for every repository).
    blobs: HashMap<String, Vec<u8>>,
}

impl Registry {
    /// Serves `images` on 127.0.0.1 (a free port) inside `netns`, from a
    /// thread of its own.
    pub fn serve(netns: NetNs, images: &[Image]) -> anyhow::Result<Registry> {
        let listener: TcpListener = netns.bind(([127, 0, 0, 1], 0).into())?;
        let addr = listener.local_addr()?;
        let mut content = Content {
            manifests: HashMap::new(),
            blobs: HashMap::new(),
        };
        for i in images {
            let m = (i.manifest_digest.clone(), i.manifest.clone());
            content
                .manifests
                .insert(format!("{}:{}", i.repo, i.tag), m.clone());
            content
                .manifests
                .insert(format!("{}@{}", i.repo, i.manifest_digest), m);
            for (d, b) in &i.blobs {
                content.blobs.insert(d.clone(), b.clone());
            }
        }
        let content = Arc::new(content);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cri-node-registry".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let content = content.clone();
                    let _ = std::thread::Builder::new()
                        .name("cri-node-registry-conn".into())
                        .spawn(move || {
                            let _ = handle(conn, &content);
                        });
                }
            })?;
        Ok(Registry {
            addr,
            netns,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop is blocked in accept(): wake it with a
        // connection (the listener keeps the namespace alive until then).
        if self.netns.connect(self.addr).is_ok() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Serves requests on one connection (HTTP/1.1 keep-alive) until it closes.
fn handle(conn: TcpStream, content: &Content) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let h = header.trim_end();
            if h.is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection:") && h.contains("close") {
                close = true;
            }
        }
        let mut parts = request.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let (status, ctype, digest, body) = route(method, path, content);
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
             Docker-Distribution-API-Version: registry/2.0\r\n",
            body.len()
        );
        if let Some(d) = digest {
            head.push_str(&format!("Docker-Content-Digest: {d}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(body)?;
        }
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

const NOT_FOUND: &[u8] = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"not found"}]}"#;

fn route<'a>(
    method: &str,
    path: &str,
    content: &'a Content,
) -> (&'static str, &'static str, Option<String>, &'a [u8]) {
    const JSON: &str = "application/json";
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", JSON, None, NOT_FOUND);
    }
    if path == "/v2/" || path == "/v2" {
        return ("200 OK", JSON, None, b"{}");
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return ("404 Not Found", JSON, None, NOT_FOUND);
    };
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let sep = if reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        if let Some((digest, body)) = content.manifests.get(&format!("{repo}{sep}{reference}")) {
            return ("200 OK", MANIFEST_TYPE, Some(digest.clone()), body);
        }
    } else if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        if let Some(body) = content.blobs.get(digest) {
            return (
                "200 OK",
                "application/octet-stream",
                Some(digest.to_string()),
                body,
            );
        }
    }
    ("404 Not Found", JSON, None, NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_the_distribution_api() {
        let img = Image::new("lib/bb", "v1", b"layer".to_vec(), serde_json::json!({}));
        let mut content = Content {
            manifests: HashMap::new(),
            blobs: img.blobs.clone(),
        };
        let m = (img.manifest_digest.clone(), img.manifest.clone());
        content.manifests.insert("lib/bb:v1".into(), m.clone());
        content
            .manifests
            .insert(format!("lib/bb@{}", img.manifest_digest), m);
        assert_eq!(route("GET", "/v2/", &content).0, "200 OK");
        for reference in ["v1", img.manifest_digest.as_str()] {
            let (status, ctype, digest, body) = route(
                "HEAD",
                &format!("/v2/lib/bb/manifests/{reference}"),
                &content,
            );
            assert_eq!((status, ctype), ("200 OK", MANIFEST_TYPE));
            assert_eq!(digest.as_deref(), Some(img.manifest_digest.as_str()));
            assert_eq!(body, img.manifest.as_slice());
        }
        let (digest, blob) = img.blobs.iter().next().unwrap();
        let r = route("GET", &format!("/v2/lib/bb/blobs/{digest}"), &content);
        assert_eq!((r.0, r.3), ("200 OK", blob.as_slice()));
        assert_eq!(
            route("GET", "/v2/lib/bb/manifests/v2", &content).0,
            "404 Not Found"
        );
        assert_eq!(
            route("GET", "/v2/other/blobs/sha256:00", &content).0,
            "404 Not Found"
        );
        assert_eq!(
            route("PUT", "/v2/lib/bb/manifests/v1", &content).0,
            "405 Method Not Allowed"
        );
    }
}
