//! Helpers for the session tests (issue 15): logins that keep their whole answer, refreshes, and
//! the stored session and refresh-token items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::auth::Claims;
use shared::domain::RefreshToken;
use shared::handlers::{LOGIN, ME, REFRESH};
use shared::store::keys;
use uuid::Uuid;

use super::{PASSWORD, TestApp, TestResponse, event, unique_username};

pub type Item = HashMap<String, AttributeValue>;

/// What login and refresh answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl Pair {
    pub fn of(response: &TestResponse) -> Self {
        assert_eq!(response.status(), 200, "{}", response.text());
        let body = response.json();
        Self {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            body,
        }
    }
}

impl TestApp {
    /// A login's whole answer, from `ip` with `user_agent`.
    pub async fn login_from(&self, username: &str, ip: &str, user_agent: &str) -> TestResponse {
        let body = json!({"username": username, "password": PASSWORD});
        let request = event("POST", "/api/auth/login")
            .source_ip(ip)
            .header("user-agent", user_agent)
            .json(&body)
            .build();
        self.call(&LOGIN, request).await
    }

    /// A new user and the pair of its first login.
    pub async fn user_with_pair(&self) -> (String, Pair) {
        let username = unique_username();
        assert_eq!(self.register(&username).await.status(), 201);
        let pair = Pair::of(&self.login(&username, PASSWORD).await);
        (username, pair)
    }

    /// Another login (session) of `username`.
    pub async fn another_session(&self, username: &str) -> Pair {
        Pair::of(&self.login(username, PASSWORD).await)
    }

    pub async fn refresh(&self, refresh_token: &str) -> TestResponse {
        let request = event("POST", "/api/auth/refresh")
            .json(&json!({"refresh_token": refresh_token}))
            .build();
        self.call(&REFRESH, request).await
    }

    pub async fn me(&self, access_token: &str) -> TestResponse {
        let request = event("GET", "/api/auth/me").bearer(access_token).build();
        self.call(&ME, request).await
    }

    pub fn claims(&self, access_token: &str) -> Claims {
        self.state.jwt_keys().unwrap().verify(access_token).unwrap()
    }

    /// An item as stored, read consistently.
    pub async fn item(&self, key: &keys::Key) -> Option<Item> {
        self.dynamodb()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key.attributes()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    pub async fn session_item(&self, sid: Uuid) -> Option<Item> {
        self.item(&keys::session(sid)).await
    }

    pub async fn refresh_item(&self, refresh_token: &str) -> Option<Item> {
        let token = RefreshToken::parse(refresh_token).expect("a refresh token");
        self.item(&keys::refresh_token(token.hash().as_str())).await
    }

    /// Every refresh-token item of session `sid` (a scan: tests only).
    pub async fn refresh_items_of(&self, sid: Uuid) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb()
                .scan()
                .table_name(self.table())
                .filter_expression("begins_with(PK, :refresh) AND sid = :sid")
                .expression_attribute_values(":refresh", AttributeValue::S("REFRESH#".into()))
                .expression_attribute_values(":sid", AttributeValue::S(sid.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return items,
            }
        }
    }
}

/// A string attribute of an item.
pub fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item[name].as_s().unwrap()
}

/// A number attribute of an item.
pub fn number(item: &Item, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}
