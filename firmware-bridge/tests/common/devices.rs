//! Test devices: the Teltonika handshake and JT/T 808 request/reply exchanges.

use std::time::Duration;

use firmware_bridge::jt808;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
        .await
        .expect("a reply in time")
        .unwrap();
    buf
}

/// Nothing arrives for a while: the device was not acknowledged.
pub async fn assert_silent(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await;
    assert!(read.is_err(), "expected no reply, got {read:?}");
}

pub async fn teltonika_hello(addr: std::net::SocketAddr, imei: &str) -> (TcpStream, u8) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&firmware_bridge::teltonika::avl::encode_imei(imei))
        .await
        .unwrap();
    let answer = read_exactly(&mut stream, 1).await[0];
    (stream, answer)
}

pub fn jt808_reply(bytes: &[u8]) -> jt808::Message {
    jt808::frame::decode(bytes).unwrap()
}

pub async fn jt808_exchange(stream: &mut TcpStream, request: &[u8]) -> jt808::Message {
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the bridge closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let firmware_bridge::framing::Framing::Frame { len } = jt808::frame::frame(&buf, 4096) {
            return jt808_reply(&buf[..len]);
        }
    }
}
