//! Requests no HTTP client library would send: raw HTTP/1.1 over TLS, with whatever
//! bytes a hostile client puts in its request line and headers.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    client::TlsStream,
    rustls::{
        self,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        pki_types::{CertificateDer, ServerName, UnixTime},
        DigitallySignedStruct, SignatureScheme,
    },
    TlsConnector,
};

/// Accepts the fixtures' self-signed certificates, as the tests' reqwest clients do.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS connection to the fixture at `base_url` (`https://HOST:PORT`), offering only
/// the ALPN protocol `alpn`.
async fn connect(base_url: &str, alpn: &[u8]) -> TlsStream<TcpStream> {
    let addr = base_url.strip_prefix("https://").expect("an https:// URL");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connecting");
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Sends `head` (a request line and headers, without the blank line ending them; a
/// `Connection: close` is added) as HTTP/1.1 over TLS to the fixture at `base_url`
/// and returns the status code of its answer, 0 when the server closed the connection
/// without one.
pub async fn http1(base_url: &str, head: &[u8]) -> u16 {
    let mut tls = connect(base_url, b"http/1.1").await;
    let mut request = head.to_vec();
    request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    tls.write_all(&request).await.expect("sending");
    let mut answer = Vec::new();
    // Errors after the status line (the server closing without close_notify) are fine.
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer))
        .await
        .expect("the server answers within 10 s");
    std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// HTTP/2 frame types and flags used here (RFC 9113, section 6).
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// The largest frame payload every HTTP/2 peer must accept.
const MIN_MAX_FRAME_SIZE: usize = 16_384;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame length");
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HPACK string literal, not Huffman-coded (RFC 7541, sections 5.1 and 5.2).
fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut len = s.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend(s);
}

/// GETs `path` as `user_agent` over HTTP/2 with the header block split into a HEADERS
/// frame and CONTINUATION frames of at most 16 KiB each; returns the status code (200
/// or 0 when the answer is not a 200).
pub async fn http2_continued(base_url: &str, path: &str, user_agent: &[u8]) -> u16 {
    let mut block = Vec::new();
    let authority = base_url.strip_prefix("https://").expect("an https:// URL");
    for (name, value) in [
        (b":method".as_slice(), b"GET".as_slice()),
        (b":scheme", b"https"),
        (b":path", path.as_bytes()),
        (b":authority", authority.as_bytes()),
        (b"user-agent", user_agent),
    ] {
        // A literal header field without indexing, with a literal name.
        block.push(0x00);
        hpack_string(&mut block, name);
        hpack_string(&mut block, value);
    }
    let mut chunks: Vec<&[u8]> = block.chunks(MIN_MAX_FRAME_SIZE).collect();
    assert!(
        chunks.len() > 1,
        "a header block this small needs no CONTINUATION"
    );
    let last = chunks.pop().expect("chunks");
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    request.extend(frame(SETTINGS, 0, 0, &[]));
    request.extend(frame(HEADERS, END_STREAM, 1, chunks[0]));
    for chunk in &chunks[1..] {
        request.extend(frame(CONTINUATION, 0, 1, chunk));
    }
    request.extend(frame(CONTINUATION, END_HEADERS, 1, last));

    let mut tls = connect(base_url, b"h2").await;
    tls.write_all(&request).await.expect("sending");
    let answer = async {
        loop {
            let mut head = [0u8; 9];
            tls.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            tls.read_exact(&mut payload).await.ok()?;
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & !(1 << 31);
            match (head[3], head[4] & ACK, stream) {
                (SETTINGS, 0, 0) => tls.write_all(&frame(SETTINGS, ACK, 0, &[])).await.ok()?,
                // Go sends `:status: 200` as the static table's entry 8 (RFC 7541, A).
                (HEADERS, _, 1) => {
                    return Some(if payload.first() == Some(&0x88) {
                        200
                    } else {
                        0
                    })
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .expect("the server answers within 10 s")
        .unwrap_or(0)
}
