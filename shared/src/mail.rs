//! Outgoing mail (issue 25): the `Mailer` port the handlers send through, and its SES v2
//! adapter. Beside `store` in the layers: it knows Amazon SES, the handlers know only `Mail`.
//! Locally the client points at the same moto server as DynamoDB, which keeps what it is sent
//! (`/moto-api/data.json`).

use std::pin::Pin;

use aws_config::SdkConfig;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::domain::{BaseUrl, Email, Mail, RecoveryToken, TokenPurpose};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail service refused the mail (an unverified sender or recipient, throttling, a
    /// suspended account) or could not be reached: the user may ask again.
    #[error("the mail was not sent: {0}")]
    NotSent(String),
}

pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// Sends one mail from `from`.
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, from: &'a str, mail: &'a Mail) -> MailFuture<'a>;
}

/// Amazon SES v2 `SendEmail`, simple content (a text and an HTML body).
pub struct Ses(aws_sdk_sesv2::Client);

impl Ses {
    /// The client of a process, built once per cold start from the SDK configuration the
    /// DynamoDB client has (its endpoint, timeouts and retries).
    pub fn new(sdk_config: &SdkConfig) -> Self {
        Self(aws_sdk_sesv2::Client::new(sdk_config))
    }
}

impl Mailer for Ses {
    fn send<'a>(&'a self, from: &'a str, mail: &'a Mail) -> MailFuture<'a> {
        Box::pin(async move {
            let content = |text: &str| {
                Content::builder()
                    .data(text)
                    .charset("UTF-8")
                    .build()
                    .map_err(|error| MailError::NotSent(error.to_string()))
            };
            let message = Message::builder()
                .subject(content(&mail.subject)?)
                .body(
                    Body::builder()
                        .text(content(&mail.text)?)
                        .html(content(&mail.html)?)
                        .build(),
                )
                .build();
            self.0
                .send_email()
                .from_email_address(from)
                .destination(Destination::builder().to_addresses(&mail.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await
                .map(drop)
                .map_err(not_sent)
        })
    }
}

/// What SES said: its error code alone. Not the request (which holds the mail, and so its
/// link), nor SES's message (which names the addresses it refused).
fn not_sent<E: ProvideErrorMetadata + std::fmt::Debug, R>(error: SdkError<E, R>) -> MailError {
    let reason = match &error {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("unknown").to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "unreachable".to_owned(),
        _ => "no usable answer".to_owned(),
    };
    MailError::NotSent(reason)
}

/// Where mail comes from and where its links point: the sender, the frontend's address and the
/// mailer; one per process.
pub struct Outbox {
    pub from: Email,
    pub base_url: BaseUrl,
    mailer: Box<dyn Mailer>,
}

impl Outbox {
    pub fn new(from: Email, base_url: BaseUrl, mailer: Box<dyn Mailer>) -> Self {
        Self {
            from,
            base_url,
            mailer,
        }
    }

    pub fn link(&self, purpose: TokenPurpose, token: &RecoveryToken) -> String {
        self.base_url.link(purpose, token)
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.mailer.send(self.from.as_str(), mail).await
    }
}
