//! The mail the local server (moto, which serves SES v2 beside DynamoDB) was sent, read from its
//! `/moto-api/data.json`: what the functions really sent through the SDK, no fake.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One mail as the local server keeps it.
#[derive(Clone, Debug)]
pub struct SentMail {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

impl SentMail {
    /// The token of the link the mail carries to `page` (`reset-password`, `verify-email`).
    pub fn token(&self, page: &str) -> String {
        let marker = format!("/{page}?token=");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {page} link in {self:?}"))
            + marker.len();
        self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// Every mail sent to `address`, oldest first.
pub async fn mail_to(address: &str) -> Vec<SentMail> {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("set by `make test`");
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "GET /moto-api/data.json HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let data: Value = serde_json::from_str(body).unwrap();
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|message| SentMail {
            to: message["destinations"]["ToAddresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|to| to.as_str().map(str::to_owned))
                .collect(),
            subject: message["subject"].as_str().unwrap_or_default().to_owned(),
            body: message["body"].to_string(),
        })
        .filter(|mail| mail.to.iter().any(|to| to == address))
        .collect()
}
