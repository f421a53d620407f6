//! Routes whose next request depends on the last answer, as a client's does: a refresh presents
//! the refresh token the previous refresh answered (a spent one would be reuse, and end the
//! session); a password change changes the password back and forth, each time from the one the
//! last change set.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::measure::Answer;
use crate::world::with_body;

#[derive(Debug)]
pub enum Chain {
    /// The refresh token to present next.
    Refresh(Mutex<String>),
    /// Two passwords, and which of them is the current one.
    Passwords {
        passwords: [String; 2],
        current: Mutex<usize>,
    },
}

impl Chain {
    pub fn refresh(token: &str) -> Self {
        Self::Refresh(Mutex::new(token.to_owned()))
    }

    /// Starting from `current`, the account's password now.
    pub fn passwords(current: &str, other: &str) -> Self {
        Self::Passwords {
            passwords: [current.to_owned(), other.to_owned()],
            current: Mutex::new(0),
        }
    }

    /// `event` with the body this link of the chain sends.
    pub fn event(&self, event: &Value) -> Value {
        match self {
            Self::Refresh(token) => {
                let token = token.lock().expect("not poisoned").clone();
                with_body(event, |body| *body = json!({"refresh_token": token}))
            }
            Self::Passwords { passwords, current } => {
                let current = *current.lock().expect("not poisoned");
                with_body(event, |body| {
                    *body = json!({
                        "old_password": passwords[current],
                        "new_password": passwords[1 - current],
                    })
                })
            }
        }
    }

    /// Moves on after a success: the refresh token it answered, or the password it set. Anything
    /// else leaves the chain where it was.
    pub fn observe(&self, answer: &Answer) {
        let Answer::Http { status: 200, body } = answer else {
            return;
        };
        match self {
            Self::Refresh(token) => {
                let next = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|body| body["refresh_token"].as_str().map(str::to_owned));
                if let Some(next) = next {
                    *token.lock().expect("not poisoned") = next;
                }
            }
            Self::Passwords { current, .. } => {
                let mut current = current.lock().expect("not poisoned");
                *current = 1 - *current;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(event: &Value) -> Value {
        serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
    }

    fn answer(status: u16, body: Value) -> Answer {
        Answer::Http {
            status,
            body: body.to_string(),
        }
    }

    #[test]
    fn a_refresh_presents_what_the_last_one_answered() {
        let fixture = json!({"body": r#"{"refresh_token":"fog_rt_placeholder"}"#});
        let chain = Chain::refresh("fog_rt_first");
        assert_eq!(
            body(&chain.event(&fixture)),
            json!({"refresh_token": "fog_rt_first"})
        );
        chain.observe(&answer(200, json!({"refresh_token": "fog_rt_second"})));
        assert_eq!(
            body(&chain.event(&fixture)),
            json!({"refresh_token": "fog_rt_second"})
        );
        // A failure, or a success without a token, leaves the chain where it was.
        chain.observe(&answer(
            401,
            json!({"detail": "Invalid or expired refresh token"}),
        ));
        chain.observe(&answer(200, json!({})));
        chain.observe(&Answer::FunctionError("boom".into()));
        assert_eq!(
            body(&chain.event(&fixture)),
            json!({"refresh_token": "fog_rt_second"})
        );
    }

    #[test]
    fn the_password_goes_back_and_forth_after_each_change() {
        let fixture = json!({"body": "{}"});
        let chain = Chain::passwords("Old-Pass-2024", "New-Pass-2025");
        let first = json!({"old_password": "Old-Pass-2024", "new_password": "New-Pass-2025"});
        let second = json!({"old_password": "New-Pass-2025", "new_password": "Old-Pass-2024"});
        assert_eq!(body(&chain.event(&fixture)), first);
        chain.observe(&answer(429, json!({})));
        assert_eq!(
            body(&chain.event(&fixture)),
            first,
            "not changed: same again"
        );
        chain.observe(&answer(200, json!({"success": true})));
        assert_eq!(body(&chain.event(&fixture)), second);
        chain.observe(&answer(200, json!({"success": true})));
        assert_eq!(body(&chain.event(&fixture)), first);
    }
}
