use serde::Serialize;
use serde_json::{Map, Value};

use crate::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Reads the fields of a JSON object body, collecting every failure so that one 422 lists them
/// all. Fields the caller does not ask for are ignored.
pub struct Fields {
    body: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new(body: Map<String, Value>) -> Self {
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
        match self.body.get(name) {
            None | Some(Value::Null) => self.fail(name, "is required"),
            Some(Value::String(text)) => match parse(text) {
                Ok(value) => Some(value),
                Err(message) => self.fail(name, message),
            },
            Some(_) => self.fail(name, "must be a string"),
        }
    }

    fn fail<T>(&mut self, name: &str, message: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError {
            field: name.to_owned(),
            message: message.into(),
        });
        None
    }

    /// The 422 error for everything that failed. Call it when a field came back `None`.
    pub fn into_error(self) -> ApiError {
        ApiError::Validation(self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::new(value.as_object().unwrap().clone())
    }

    #[test]
    fn collects_every_failing_field() {
        let mut f = fields(json!({"a": 1, "c": "ok", "d": null}));
        assert_eq!(f.string("a", |s| Ok(s.to_owned())), None);
        assert_eq!(f.string("b", |s| Ok(s.to_owned())), None);
        assert_eq!(f.string("c", |s| Ok(s.to_owned())), Some("ok".to_owned()));
        assert_eq!(f.string("d", |s| Ok(s.to_owned())), None);
        let ApiError::Validation(errors) = f.into_error() else {
            panic!("not a validation error")
        };
        let failed: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
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
        let mut f = fields(json!({"n": "x"}));
        assert_eq!(f.string::<()>("n", |_| Err("nope".into())), None);
        let ApiError::Validation(errors) = f.into_error() else {
            panic!()
        };
        assert_eq!(errors[0].message, "nope");
    }
}
