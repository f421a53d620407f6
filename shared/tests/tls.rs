//! The SDK's TLS trusts Amazon's roots alone. A local HTTPS server presents a certificate from a
//! test authority that the system trust store is told about (`SSL_CERT_FILE`): the SDK's default
//! client completes the handshake, the functions' client refuses it.

use std::path::Path;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// An HTTPS server on loopback that reports, per connection, whether the TLS handshake
/// completed, and then hangs up.
async fn https_server() -> (String, mpsc::UnboundedReceiver<bool>) {
    let chain = CertificateDer::pem_file_iter(Path::new(FIXTURES).join("localhost.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(Path::new(FIXTURES).join("localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (handshakes, reports) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let completed = acceptor.accept(stream).await.is_ok();
            handshakes.send(completed).unwrap();
        }
    });
    (url, reports)
}

async fn get_item(client: &Client) {
    let result = client
        .get_item()
        .table_name("any")
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await;
    assert!(result.is_err(), "the server answers no DynamoDB request");
}

fn drain(reports: &mut mpsc::UnboundedReceiver<bool>) -> Vec<bool> {
    std::iter::from_fn(|| reports.try_recv().ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_endpoints_must_chain_to_amazons_roots() {
    // Safe: this test binary holds this one test, and nothing has read the environment yet.
    unsafe { std::env::set_var("SSL_CERT_FILE", Path::new(FIXTURES).join("ca.pem")) };
    let (url, mut reports) = https_server().await;

    let sdk_default = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&url)
        .test_credentials()
        .region(Region::from_static("us-east-1"))
        .load()
        .await;
    get_item(&Client::new(&sdk_default)).await;
    let default_handshakes = drain(&mut reports);
    assert!(
        default_handshakes.contains(&true),
        "the SDK default trusts the system's roots, so the test authority: {default_handshakes:?}"
    );

    let ours = shared::store::sdk_config(Some(&url)).await;
    get_item(&shared::store::client(&ours)).await;
    let our_handshakes = drain(&mut reports);
    assert!(
        !our_handshakes.is_empty(),
        "the functions' client connected"
    );
    assert!(
        our_handshakes.iter().all(|completed| !completed),
        "no handshake completes with a root that is not Amazon's: {our_handshakes:?}"
    );
}
