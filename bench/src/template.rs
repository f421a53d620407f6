//! What the bench learns from the repository's own descriptions: the functions and their routes
//! from `template.yaml`, and from `openapi.yaml` whether a route takes a token and what its body
//! looks like.

use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file} is not valid YAML: {reason}")]
    Yaml { file: &'static str, reason: String },
    #[error("template.yaml: function {0} has no Metadata.BuildProperties.Binary")]
    NoBinary(String),
}

/// A function of the template: its binary and the route that invokes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub binary: String,
    pub method: String,
    pub path: String,
    pub memory_mb: u64,
}

/// Every `AWS::Serverless::Function` with an `HttpApi` event, in template order.
pub fn functions(template_yaml: &str) -> Result<Vec<Function>, TemplateError> {
    // Walked as YAML, whose mappings keep the template's order.
    let template = parse_yaml("template.yaml", template_yaml)?;
    let default_memory = to_json(template["Globals"]["Function"]["MemorySize"].clone())
        .as_u64()
        .unwrap_or(128);
    let mut functions = Vec::new();
    let Some(resources) = template["Resources"].as_mapping() else {
        return Ok(functions);
    };
    for (logical_id, template_resource) in resources {
        let logical_id = logical_id.as_str().unwrap_or_default();
        let resource = to_json(template_resource.clone());
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .ok_or_else(|| TemplateError::NoBinary(logical_id.to_owned()))?;
        let properties = &resource["Properties"];
        // Its first route in the template's order (the docs page before its assets), from the
        // YAML: as a JSON object its events would come sorted by name.
        let route = template_resource["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|events| events.values())
            .map(|event| to_json(event.clone()))
            .find(|event| event["Type"] == "HttpApi");
        let Some(route) = route else { continue };
        functions.push(Function {
            binary: binary.to_owned(),
            method: route["Properties"]["Method"]
                .as_str()
                .unwrap_or("GET")
                .to_uppercase(),
            path: route["Properties"]["Path"]
                .as_str()
                .unwrap_or("/")
                .to_owned(),
            memory_mb: properties["MemorySize"].as_u64().unwrap_or(default_memory),
        });
    }
    Ok(functions)
}

/// The OpenAPI document, for what each operation needs.
pub struct Api {
    document: Value,
}

impl Api {
    pub fn parse(openapi_yaml: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            document: to_json(parse_yaml("openapi.yaml", openapi_yaml)?),
        })
    }

    fn operation(&self, method: &str, path: &str) -> &Value {
        &self.document["paths"][path][method.to_lowercase()]
    }

    /// Whether the operation takes a bearer token, required or optional (a caller that has
    /// one sends it).
    pub fn takes_token(&self, method: &str, path: &str) -> bool {
        let operation = self.operation(method, path);
        let security = match &operation["security"] {
            Value::Null => &self.document["security"],
            security => security,
        };
        security.as_array().is_some_and(|requirements| {
            requirements
                .iter()
                .any(|requirement| requirement.as_object().is_some_and(|r| !r.is_empty()))
        })
    }

    /// A JSON body for the operation, from its schema: the required properties, the bench
    /// user's values where the names match, otherwise the least value of the type.
    pub fn body(&self, method: &str, path: &str, user: &Map<String, Value>) -> Option<Value> {
        let schema =
            &self.operation(method, path)["requestBody"]["content"]["application/json"]["schema"];
        (!schema.is_null()).then(|| self.example(schema, user, 0))
    }

    fn example(&self, schema: &Value, user: &Map<String, Value>, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if depth > 8 {
            return Value::Null;
        }
        if let Some(example) = schema.get("example").or_else(|| schema.get("const")) {
            return example.clone();
        }
        if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
            return first.clone();
        }
        let kind = match &schema["type"] {
            Value::Array(kinds) => kinds.first().cloned().unwrap_or(Value::Null),
            kind => kind.clone(),
        };
        match kind.as_str() {
            Some("object") | None if schema["properties"].is_object() => {
                let mut object = Map::new();
                for name in schema["required"].as_array().into_iter().flatten() {
                    let Some(name) = name.as_str() else { continue };
                    let value = user.get(name).cloned().unwrap_or_else(|| {
                        self.example(&schema["properties"][name], user, depth + 1)
                    });
                    object.insert(name.to_owned(), value);
                }
                Value::Object(object)
            }
            Some("object") => json!({}),
            Some("array") => json!([]),
            Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(1)),
            Some("number") => json!(schema["minimum"].as_f64().unwrap_or(1.0)),
            Some("boolean") => json!(false),
            Some("string") => json!("bench"),
            _ => Value::Null,
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => reference
                .strip_prefix("#/")
                .map(|pointer| {
                    self.document
                        .pointer(&format!("/{pointer}"))
                        .unwrap_or(&Value::Null)
                })
                .unwrap_or(&Value::Null),
            None => schema,
        }
    }
}

fn parse_yaml(file: &'static str, text: &str) -> Result<serde_norway::Value, TemplateError> {
    serde_norway::from_str(text).map_err(|error| TemplateError::Yaml {
        file,
        reason: error.to_string(),
    })
}

/// JSON values of YAML ones; CloudFormation's short-form tags (`!Ref X`) become their value.
fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Yaml;
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => serde_json::to_value(&number).unwrap_or(Value::Null),
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(entries) => Value::Object(
            entries
                .into_iter()
                .filter_map(|(key, value)| match key {
                    Yaml::String(key) => Some((key, to_json(value))),
                    Yaml::Number(number) => Some((number.to_string(), to_json(value))),
                    Yaml::Bool(flag) => Some((flag.to_string(), to_json(value))),
                    _ => None,
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => to_json(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Globals:
  Function:
    MemorySize: 256
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Ref Name
  MeFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: me
    Properties:
      Policies:
        - Statement:
            - Resource: !GetAtt Table.Arn
      Events:
        Api:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: get
            Path: /api/auth/me
  LoginFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: login
    Properties:
      MemorySize: 1024
      Events:
        Api:
          Type: HttpApi
          Properties:
            Method: POST
            Path: /api/auth/login
  DocsFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: docs
    Properties:
      Events:
        Page:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /docs
        Asset:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /docs/{file}
  NotFoundFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: not-found
    Properties:
      Events:
        Unmatched:
          Type: HttpApi
          Properties:
            Method: ANY
            Path: $default
"#;

    const OPENAPI: &str = r##"
paths:
  /api/auth/me:
    get:
      security: [{ bearerAuth: [] }]
  /api/auth/logout:
    post:
      security: [{ bearerAuth: [] }, {}]
  /:
    get:
      responses: {}
  /api/auth/register:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Register" }
components:
  schemas:
    Register:
      type: object
      required: [username, password, count, kind, flag]
      properties:
        username: { type: string }
        password: { type: string }
        count: { type: integer, minimum: 3 }
        kind: { type: string, enum: [cpu, gpu] }
        flag: { type: boolean }
        optional: { type: string }
"##;

    #[test]
    fn reads_functions_and_routes_in_template_order() {
        let functions = functions(TEMPLATE).unwrap();
        assert_eq!(
            functions,
            vec![
                Function {
                    binary: "me".into(),
                    method: "GET".into(),
                    path: "/api/auth/me".into(),
                    memory_mb: 256,
                },
                Function {
                    binary: "login".into(),
                    method: "POST".into(),
                    path: "/api/auth/login".into(),
                    memory_mb: 1024,
                },
                Function {
                    binary: "docs".into(),
                    method: "GET".into(),
                    path: "/docs".into(),
                    memory_mb: 256,
                },
                Function {
                    binary: "not-found".into(),
                    method: "ANY".into(),
                    path: "$default".into(),
                    memory_mb: 256,
                },
            ]
        );
    }

    #[test]
    fn tells_which_routes_take_a_token() {
        let api = Api::parse(OPENAPI).unwrap();
        assert!(api.takes_token("GET", "/api/auth/me"));
        assert!(api.takes_token("POST", "/api/auth/logout"));
        assert!(!api.takes_token("GET", "/"));
        assert!(!api.takes_token("GET", "/not/documented"));
    }

    #[test]
    fn builds_a_body_from_the_schema_and_the_bench_user() {
        let api = Api::parse(OPENAPI).unwrap();
        let user = json!({"username": "fogbench", "password": "Fog-Compute-2024"});
        let body = api
            .body("POST", "/api/auth/register", user.as_object().unwrap())
            .unwrap();
        assert_eq!(
            body,
            json!({"username": "fogbench", "password": "Fog-Compute-2024", "count": 3, "kind": "cpu", "flag": false})
        );
        assert_eq!(api.body("GET", "/", user.as_object().unwrap()), None);
    }
}
