//! Property tests of the request decoding and validation layer: arbitrary bytes and strings
//! never make it panic, and whatever it accepts is within the documented bounds.

use lambda_http::{Body, Request, http};
use proptest::prelude::*;
use shared::domain::{
    Amount, CPU_REQUIRED, DeviceId, Email, EscapedText, Fields, JOB_NAME_CHARS, MAX_TOKENS,
    Password, TITLE_CHARS, Username, VOTING_PERIOD_HOURS, WalletAddress,
};
use shared::http::{MAX_BODY_BYTES, json_body};

fn json_request(body: Vec<u8>) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/api/tokenomics/transfer")
        .header("content-type", "application/json")
        .body(Body::Binary(body))
        .expect("a valid request")
}

/// Text that is often JSON-shaped, so that the decoder gets past its first byte.
fn jsonish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just("\"amount\"".to_owned()),
            Just("\"a\"".to_owned()),
            Just("null".to_owned()),
            Just("1e309".to_owned()),
            Just("-0".to_owned()),
            Just("\"\\ud800\"".to_owned()),
            "[0-9.eE+-]{1,12}",
            any::<String>().prop_map(|text| serde_json::to_string(&text).unwrap()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2_048)) {
        let _ = json_body(&json_request(bytes));
    }

    #[test]
    fn accepted_bodies_are_objects_with_unique_fields(text in jsonish()) {
        if let Ok(fields) = json_body(&json_request(text.clone().into_bytes())) {
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("accepted text is JSON");
            prop_assert!(parsed.is_object());
            prop_assert!(text.len() <= MAX_BODY_BYTES);
            prop_assert_eq!(fields.len(), parsed.as_object().unwrap().len());
        }
    }

    #[test]
    fn accepted_amounts_are_exact_positive_and_bounded(text in prop_oneof![
        "-?[0-9]{0,32}(\\.[0-9]{0,22})?(e-?[0-9]{1,3})?", any::<String>()
    ]) {
        if let Ok(amount) = Amount::parse(&text) {
            prop_assert!(amount.units() > 0 && amount.units() <= MAX_TOKENS);
            let (_, fraction) = text.split_once('.').unwrap_or((&text, ""));
            prop_assert!(fraction.len() <= 18);
            prop_assert!(text.chars().all(|c| c.is_ascii_digit() || c == '.'));
            // The answer's decimal string reads back as the same amount.
            prop_assert_eq!(Amount::parse(&amount.tokens().to_string()).unwrap(), amount);
        }
    }

    #[test]
    fn accepted_numbers_are_finite_and_within_their_range(literal in prop_oneof![
        "-?[0-9]{1,400}(\\.[0-9]{1,20})?(e[+-]?[0-9]{1,4})?", Just("NaN".to_owned()), Just("Infinity".to_owned())
    ]) {
        let body = format!(r#"{{"cpu_required": {literal}}}"#);
        if let Ok(object) = json_body(&json_request(body.into_bytes())) {
            let mut fields = Fields::new(object);
            if let Some(cpu) = fields.number("cpu_required", CPU_REQUIRED, None) {
                prop_assert!(cpu.is_finite() && CPU_REQUIRED.contains(&cpu));
            }
        }
    }

    #[test]
    fn accepted_whole_numbers_are_within_their_range(literal in prop_oneof![
        "-?[0-9]{1,400}(\\.[0-9]{1,20})?(e[+-]?[0-9]{1,4})?", Just("true".to_owned()), Just("\"24\"".to_owned())
    ]) {
        let body = format!(r#"{{"voting_period_hours": {literal}}}"#);
        if let Ok(object) = json_body(&json_request(body.into_bytes())) {
            let mut fields = Fields::new(object);
            if let Some(Some(hours)) = fields.optional_integer("voting_period_hours", VOTING_PERIOD_HOURS) {
                prop_assert!(VOTING_PERIOD_HOURS.contains(&hours));
                let number: f64 = literal.parse().unwrap();
                prop_assert_eq!(number, hours as f64);
            }
        }
    }

    #[test]
    fn accepted_credentials_meet_their_rules(text in any::<String>()) {
        if let Ok(username) = Username::parse(&text) {
            let name = username.as_str();
            prop_assert!((3..=50).contains(&name.len()));
            prop_assert!(name.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || c == '_' || c == '-'));
        }
        if let Ok(email) = Email::parse(&text) {
            prop_assert!(email.as_str().chars().count() <= 100 && email.as_str().contains('@'));
        }
        if let Ok(password) = Password::parse(&text) {
            let password = password.expose();
            prop_assert!((8..=256).contains(&password.chars().count()));
            prop_assert!(password.chars().any(char::is_uppercase) && password.chars().any(char::is_lowercase));
            prop_assert!(password.chars().any(|c| c.is_ascii_digit()));
        }
        if let Ok(address) = WalletAddress::parse(&text) {
            prop_assert!(address.as_str().len() == 66 && address.as_str().starts_with("0x"));
        }
    }

    #[test]
    fn accepted_free_text_is_bounded_escaped_and_visible(text in any::<String>()) {
        for range in [JOB_NAME_CHARS, TITLE_CHARS] {
            if let Ok(escaped) = EscapedText::parse(&text, range.clone()) {
                prop_assert!(range.contains(&text.trim().chars().count()));
                let stored = escaped.into_string();
                prop_assert!(!stored.contains('<') && !stored.contains('>') && !stored.contains('"'));
                prop_assert!(!stored.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
            }
        }
        if let Ok(device) = DeviceId::parse(&text) {
            prop_assert!(!device.into_string().chars().any(char::is_control));
        }
    }
}
