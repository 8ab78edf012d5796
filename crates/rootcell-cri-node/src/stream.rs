//! The client side of the CRI streaming server's `exec` (what `kubectl
//! exec` reaches through the kubelet): a WebSocket with the subprotocol
//! `v4.channel.k8s.io`; the first byte of each binary message names the
//! channel (0 stdin, 1 stdout, 2 stderr, 3 the final status as a
//! `metav1.Status` JSON object).

use crate::netns::NetNs;
use anyhow::{anyhow, bail, Context, Result};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

/// What a streamed exec produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// The exit code from the status channel (0 for `Success`).
    pub exit_code: i32,
    /// The raw status object.
    pub status: String,
}

/// Runs the exec at `url` (an `ExecResponse.url`, `http://127.0.0.1:PORT/...`
/// on containerd's streaming server) through a connection made in `netns`,
/// and collects its output until the server closes the stream.
pub fn exec(netns: &NetNs, url: &str, timeout: Duration) -> Result<ExecOutput> {
    exec_with_input(netns, url, None, timeout)
}

/// [`exec`], writing `stdin` (when given: the exec was asked with
/// `stdin: true`) on channel 0 first. v4.channel.k8s.io cannot close
/// stdin: the command must stop reading by itself (`head -n 1`).
pub fn exec_with_input(
    netns: &NetNs,
    url: &str,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<ExecOutput> {
    let ws_url = url
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .ok_or_else(|| anyhow!("exec url {url}: not http://"))?;
    let hostport = ws_url["ws://".len()..]
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let addr: std::net::SocketAddr = hostport
        .parse()
        .with_context(|| format!("exec url {url}: host:port"))?;
    let stream = netns.connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut request = ws_url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().expect("a header value"),
    );
    let (mut ws, _) = tungstenite::client::client(request, stream)
        .map_err(|e| anyhow!("websocket handshake with {url}: {e}"))?;
    if let Some(input) = stdin {
        let mut msg = vec![0u8];
        msg.extend_from_slice(input);
        ws.send(Message::Binary(msg))
            .map_err(|e| anyhow!("exec {url}: writing stdin: {e}"))?;
    }
    let deadline = Instant::now() + timeout;
    let mut out = ExecOutput::default();
    let mut status: Option<String> = None;
    loop {
        if Instant::now() > deadline {
            bail!("exec {url}: no end after {timeout:?}");
        }
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            // The server may drop the connection without a close frame
            // once it sent the status.
            Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Io(_))
                if status.is_some() =>
            {
                break
            }
            Err(e) => return Err(anyhow!("exec {url}: {e}")),
        };
        let data = match msg {
            Message::Binary(b) => b,
            Message::Text(t) => t.into_bytes(),
            Message::Close(_) => break,
            _ => continue,
        };
        let Some((&channel, payload)) = data.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(payload);
        match channel {
            1 => out.stdout.push_str(&text),
            2 => out.stderr.push_str(&text),
            3 if !payload.is_empty() => status = Some(text.into_owned()),
            _ => {}
        }
    }
    let status = status.ok_or_else(|| anyhow!("exec {url}: the stream ended without a status"))?;
    out.exit_code = exit_code(&status)?;
    out.status = status;
    Ok(out)
}

/// The exit code of a `metav1.Status`: 0 for `Success`; else the
/// `ExitCode` cause's message (`NonZeroExitCode`).
fn exit_code(status: &str) -> Result<i32> {
    let v: serde_json::Value =
        serde_json::from_str(status).with_context(|| format!("exec status {status}"))?;
    if v["status"] == "Success" {
        return Ok(0);
    }
    let causes = v["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in causes {
        if c["reason"] == "ExitCode" {
            if let Some(code) = c["message"].as_str().and_then(|m| m.parse().ok()) {
                return Ok(code);
            }
        }
    }
    bail!("exec status without an exit code: {status}")
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn exit_codes_from_the_status_channel() {
        assert_eq!(
            exit_code(r#"{"metadata":{},"status":"Success"}"#).unwrap(),
            0
        );
        let failed = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 5], exit code 5","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"5"}]}}"#;
        assert_eq!(exit_code(failed).unwrap(), 5);
        assert!(exit_code(r#"{"status":"Failure"}"#).is_err());
    }
}
