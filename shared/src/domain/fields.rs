use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::Amount;

/// A request body's top-level fields, each kept as its JSON text. Keeping the text lets an
/// amount be read from the digits the client wrote rather than from a lossy float, and leaves
/// fields nobody asks for unparsed.
pub type JsonObject = BTreeMap<String, Box<RawValue>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every field of a request that failed validation.
#[derive(Debug, thiserror::Error)]
#[error("Invalid fields: {}", .0.iter().map(|error| error.field.as_str()).collect::<Vec<_>>().join(", "))]
pub struct ValidationError(pub Vec<FieldError>);

/// Reads the fields of a JSON object body, collecting every failure so that one 422 lists them
/// all. Fields the caller does not ask for are ignored.
pub struct Fields {
    body: JsonObject,
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new(body: JsonObject) -> Self {
        Self {
            body,
            errors: Vec::new(),
        }
    }

    /// A required string field, handed to `parse`.
    pub fn string<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.required::<String>(name, "must be a string")?;
        self.check(name, parse(&text))
    }

    /// An optional string field, handed to `parse` when present and not null.
    pub fn optional_string<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.optional::<String>(name, "must be a string")? {
            None => Some(None),
            Some(text) => self.check(name, parse(&text)).map(Some),
        }
    }

    /// An optional array of strings, handed whole to `parse` when present and not null.
    pub fn optional_strings<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&[String]) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.optional::<Vec<String>>(name, "must be an array of strings")? {
            None => Some(None),
            Some(strings) => self.check(name, parse(&strings)).map(Some),
        }
    }

    /// A finite number within `range` that DynamoDB can store; `default` when absent or null,
    /// required without one.
    pub fn number(
        &mut self,
        name: &str,
        range: RangeInclusive<f64>,
        default: Option<f64>,
    ) -> Option<f64> {
        let number = match default {
            Some(default) => self.optional(name, FINITE_NUMBER)?.unwrap_or(default),
            None => self.required(name, FINITE_NUMBER)?,
        };
        self.check(name, storable_within(number, range))
    }

    /// A finite number within `range` that DynamoDB can store, or nothing when absent or null.
    pub fn optional_number(
        &mut self,
        name: &str,
        range: RangeInclusive<f64>,
    ) -> Option<Option<f64>> {
        match self.optional::<f64>(name, FINITE_NUMBER)? {
            None => Some(None),
            Some(number) => self.check(name, storable_within(number, range)).map(Some),
        }
    }

    /// A required whole number within `range`. JSON has one number type, so `8.0` and `8e0`
    /// are the whole number 8, as JSON Schema's `integer` reads them; `8.5` is not.
    pub fn integer(&mut self, name: &str, range: RangeInclusive<i64>) -> Option<i64> {
        match self.optional_integer(name, range)? {
            Some(integer) => Some(integer),
            None => self.fail(name, "is required"),
        }
    }

    /// A whole number within `range`, as `integer` reads it, or nothing when absent or null.
    pub fn optional_integer(
        &mut self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Option<Option<i64>> {
        const WHOLE_NUMBER: &str = "must be a whole number";
        let Some(number) = self.optional::<serde_json::Number>(name, WHOLE_NUMBER)? else {
            return Some(None);
        };
        let integer = match number.as_i64() {
            Some(integer) => Ok(integer),
            // Beyond i64 saturates, and is then refused by `range` like any number too large.
            None => number
                .as_f64()
                .filter(|number| number.fract() == 0.0)
                .map(|number| number as i64)
                .ok_or_else(|| WHOLE_NUMBER.to_owned()),
        };
        self.check(name, integer.and_then(|integer| within(integer, range)))
            .map(Some)
    }

    /// A boolean; `default` when absent or null, required without one.
    pub fn boolean(&mut self, name: &str, default: Option<bool>) -> Option<bool> {
        const BOOLEAN: &str = "must be true or false";
        match default {
            Some(default) => Some(self.optional(name, BOOLEAN)?.unwrap_or(default)),
            None => self.required(name, BOOLEAN),
        }
    }

    /// A required token amount, written as a JSON string ("0.1") or a JSON number (0.1). Either
    /// way the digits themselves are read, never a float.
    pub fn amount(&mut self, name: &str) -> Option<Amount> {
        let raw = match self.body.get(name).map(|raw| raw.get()) {
            None | Some("null") => return self.fail(name, "is required"),
            Some(raw) => raw,
        };
        let parsed = match serde_json::from_str::<String>(raw) {
            Ok(text) => Amount::parse(&text),
            // A JSON number literal: its text is exactly what the client wrote.
            Err(_) if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                Amount::parse(raw)
            }
            Err(_) => Err("must be a decimal number, as a string or a JSON number".into()),
        };
        self.check(name, parsed)
    }

    /// Records a failure of `name`; always `None`, so callers can return it.
    pub fn fail<T>(&mut self, name: &str, message: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError {
            field: name.to_owned(),
            message: message.into(),
        });
        None
    }

    /// The error for everything that failed. Call it when a field came back `None`.
    pub fn into_error(self) -> ValidationError {
        ValidationError(self.errors)
    }

    fn check<T>(&mut self, name: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => self.fail(name, message),
        }
    }

    fn required<T: DeserializeOwned>(&mut self, name: &str, expected: &str) -> Option<T> {
        match self.optional(name, expected)? {
            Some(value) => Some(value),
            None => self.fail(name, "is required"),
        }
    }

    /// `Some(None)` when absent or null, `None` (recorded) when of the wrong type.
    fn optional<T: DeserializeOwned>(&mut self, name: &str, expected: &str) -> Option<Option<T>> {
        match self.body.get(name).map(|raw| raw.get()) {
            None | Some("null") => Some(None),
            Some(raw) => match serde_json::from_str(raw) {
                Ok(value) => Some(Some(value)),
                Err(_) => self.fail(name, expected),
            },
        }
    }
}

/// serde_json refuses NaN, infinities and literals beyond f64's range, so what parses is finite.
const FINITE_NUMBER: &str = "must be a finite number";

/// The largest number a field may hold: DynamoDB stores magnitudes up to just under 10^126 and
/// refuses the item otherwise, so an unbounded field stops at 10^125.
pub const MAX_STORED_NUMBER: f64 = 1e125;
/// The smallest non-zero magnitude DynamoDB stores; between it and zero it refuses the item.
const MIN_STORED_MAGNITUDE: f64 = 1e-130;

/// `within`, and a magnitude DynamoDB can store (0, or at least `MIN_STORED_MAGNITUDE`).
fn storable_within(number: f64, range: RangeInclusive<f64>) -> Result<f64, String> {
    if !range.contains(&number) {
        return Err(format!(
            "must be from {} to {}",
            readable(*range.start()),
            readable(*range.end())
        ));
    }
    if number != 0.0 && number.abs() < MIN_STORED_MAGNITUDE {
        return Err(format!(
            "must be 0 or at least {MIN_STORED_MAGNITUDE:e} in magnitude"
        ));
    }
    Ok(number)
}

/// A bound as people write it: `64`, `0.5`, but `1e125` rather than 126 digits.
fn readable(bound: f64) -> String {
    if bound.abs() >= 1e16 {
        format!("{bound:e}")
    } else {
        bound.to_string()
    }
}

fn within<T: PartialOrd + std::fmt::Display>(
    value: T,
    range: RangeInclusive<T>,
) -> Result<T, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be from {} to {}", range.start(), range.end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Fields {
        Fields::new(serde_json::from_str(text).unwrap())
    }

    fn failures(fields: Fields) -> Vec<(String, String)> {
        let ValidationError(errors) = fields.into_error();
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn collects_every_failing_field() {
        let mut f = fields(r#"{"a": 1, "c": "ok", "d": null}"#);
        assert_eq!(f.string("a", |s| Ok(s.to_owned())), None);
        assert_eq!(f.string("b", |s| Ok(s.to_owned())), None);
        assert_eq!(f.string("c", |s| Ok(s.to_owned())), Some("ok".to_owned()));
        assert_eq!(f.string("d", |s| Ok(s.to_owned())), None);
        let failed = failures(f);
        let failed: Vec<_> = failed
            .iter()
            .map(|(field, message)| (field.as_str(), message.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                ("a", "must be a string"),
                ("b", "is required"),
                ("d", "is required")
            ]
        );
    }

    #[test]
    fn parser_messages_are_kept() {
        let mut f = fields(r#"{"n": "x"}"#);
        assert_eq!(f.string::<()>("n", |_| Err("nope".into())), None);
        assert_eq!(failures(f)[0].1, "nope");
    }

    #[test]
    fn numbers_within_bounds_defaults_and_types() {
        let mut f = fields(
            r#"{"low": 0, "high": 64, "over": 64.0001, "text": "5", "huge": 1e999, "int": 7, "frac": 7.5, "neg": -1,
                "whole": 118.0, "exp": 1.28e2, "big": 1e19, "bigger": 18446744073709551616}"#,
        );
        assert_eq!(f.number("low", 0.0..=64.0, None), Some(0.0));
        assert_eq!(f.number("high", 0.0..=64.0, None), Some(64.0));
        assert_eq!(f.number("missing", 0.0..=8.0, Some(0.0)), Some(0.0));
        assert_eq!(f.optional_number("missing", 0.0..=8.0), Some(None));
        assert_eq!(f.integer("int", 1..=128), Some(7));
        assert_eq!(f.integer("whole", 1..=128), Some(118));
        assert_eq!(f.integer("exp", 1..=128), Some(128));
        assert_eq!(f.optional_integer("int", 1..=128), Some(Some(7)));
        assert_eq!(f.optional_integer("missing", 1..=128), Some(None));
        assert_eq!(f.number("over", 0.0..=64.0, None), None);
        assert_eq!(f.number("text", 0.0..=64.0, None), None);
        assert_eq!(f.optional_number("huge", 0.0..=MAX_STORED_NUMBER), None);
        assert_eq!(f.integer("frac", 1..=128), None);
        assert_eq!(f.integer("neg", 1..=128), None);
        assert_eq!(f.integer("big", 1..=128), None);
        assert_eq!(f.integer("bigger", 1..=128), None);
        let failed = failures(f);
        let failed: Vec<_> = failed
            .iter()
            .map(|(field, message)| (field.as_str(), message.as_str()))
            .collect();
        assert_eq!(
            failed,
            [
                ("over", "must be from 0 to 64"),
                ("text", "must be a finite number"),
                ("huge", "must be a finite number"),
                ("frac", "must be a whole number"),
                ("neg", "must be from 1 to 128"),
                ("big", "must be from 1 to 128"),
                ("bigger", "must be from 1 to 128"),
            ]
        );
    }

    #[test]
    fn numbers_are_refused_where_dynamodb_could_not_store_them() {
        let mut f = fields(
            r#"{"max": 1e125, "over": 1e126, "top": 1.7976931348623157e308, "least": 1e-130,
                "tiny": 1e-131, "subnormal": 5e-324, "zero": 0.0, "negative_zero": -0.0}"#,
        );
        let unbounded = 0.0..=MAX_STORED_NUMBER;
        assert_eq!(f.number("max", unbounded.clone(), None), Some(1e125));
        assert_eq!(f.number("least", 0.0..=64.0, None), Some(1e-130));
        assert_eq!(f.number("zero", 0.0..=64.0, None), Some(0.0));
        assert_eq!(f.number("negative_zero", 0.0..=64.0, None), Some(0.0));
        assert_eq!(f.optional_number("over", unbounded.clone()), None);
        assert_eq!(f.optional_number("top", unbounded), None);
        assert_eq!(f.number("tiny", 0.0..=64.0, None), None);
        assert_eq!(f.number("subnormal", 0.0..=100.0, Some(100.0)), None);
        let failed = failures(f);
        let failed: Vec<_> = failed
            .iter()
            .map(|(field, message)| (field.as_str(), message.as_str()))
            .collect();
        let too_small = "must be 0 or at least 1e-130 in magnitude";
        assert_eq!(
            failed,
            [
                ("over", "must be from 0 to 1e125"),
                ("top", "must be from 0 to 1e125"),
                ("tiny", too_small),
                ("subnormal", too_small),
            ]
        );
    }

    #[test]
    fn arrays_of_strings() {
        let mut f = fields(
            r#"{"ok": ["a", "b"], "empty": [], "mixed": ["a", 1], "text": "a", "null": null}"#,
        );
        let joined = |strings: &[String]| Ok::<_, String>(strings.join("+"));
        assert_eq!(
            f.optional_strings("ok", joined),
            Some(Some("a+b".to_owned()))
        );
        assert_eq!(
            f.optional_strings("empty", joined),
            Some(Some(String::new()))
        );
        assert_eq!(f.optional_strings("missing", joined), Some(None));
        assert_eq!(f.optional_strings("null", joined), Some(None));
        assert_eq!(f.optional_strings("mixed", joined), None);
        assert_eq!(f.optional_strings("text", joined), None);
        assert_eq!(
            f.optional_strings("ok", |_| Err::<(), _>("nope".into())),
            None
        );
        let failed = failures(f);
        assert_eq!(
            failed,
            [
                ("mixed".to_owned(), "must be an array of strings".to_owned()),
                ("text".to_owned(), "must be an array of strings".to_owned()),
                ("ok".to_owned(), "nope".to_owned()),
            ]
        );
    }

    #[test]
    fn booleans() {
        let mut f = fields(r#"{"yes": true, "no": false, "bad": "true"}"#);
        assert_eq!(f.boolean("yes", None), Some(true));
        assert_eq!(f.boolean("no", Some(true)), Some(false));
        assert_eq!(f.boolean("missing", Some(false)), Some(false));
        assert_eq!(f.boolean("bad", None), None);
        assert_eq!(f.boolean("missing", None), None);
        assert_eq!(failures(f).len(), 2);
    }

    #[test]
    fn amounts_are_read_from_the_written_digits() {
        let mut f = fields(
            r#"{"s": "0.1", "n": 0.2, "tiny": 0.000000000000000001, "long": 1.0000000000000000001,
                "exp": 1e5, "neg": -3, "nan": "NaN", "bool": true, "list": [1], "zero": "0"}"#,
        );
        assert_eq!(f.amount("s").unwrap().units(), 100_000_000_000_000_000);
        assert_eq!(f.amount("n").unwrap().units(), 200_000_000_000_000_000);
        assert_eq!(f.amount("tiny").unwrap().units(), 1);
        for bad in [
            "long", "exp", "neg", "nan", "bool", "list", "zero", "missing",
        ] {
            assert_eq!(f.amount(bad), None, "{bad} was accepted");
        }
        assert_eq!(failures(f).len(), 8);
    }
}
