//! The interactive API docs: `GET /docs`, Swagger UI on this API's own `/openapi.json`, and
//! `GET /docs/{file}`, the page's scripts, stylesheets and icon. Swagger UI's files come from
//! the `swagger-ui-redist` crate, the page and its start-up script from `docs/` beside this file;
//! `build.rs` names each asset by a hash of its content, so that a browser may keep it for good,
//! and writes the page with those names. Nothing comes from anywhere else: the page works
//! offline, under a Content-Security-Policy that allows this origin alone (`Serves::DocsPage`).

use lambda_http::{Body, Request, Response};

use crate::AppState;
use crate::http::{ApiError, file_response, path_parameter};

/// A file the page loads, embedded in the binary.
pub(super) struct Asset {
    /// `<stem>.<16 hex digits of the content's SHA-256>.<extension>`
    pub(super) name: &'static str,
    pub(super) content_type: &'static str,
    pub(super) bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/docs.rs"));

/// The page names the assets of this build, so a browser asks again each time it shows it.
const PAGE_CACHING: &str = "no-cache";
/// An asset's name changes with its content: what a name refers to never changes.
const ASSET_CACHING: &str = "public, max-age=31536000, immutable";

/// `GET /docs` and `GET /docs/{file}`
pub async fn docs(req: Request, _state: &AppState) -> Result<Response<Body>, ApiError> {
    let Some(name) = path_parameter(&req, "file") else {
        return Ok(file_response(
            "text/html; charset=utf-8",
            PAGE_CACHING,
            Body::Text(PAGE.to_owned()),
        ));
    };
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or_else(|| ApiError::NotFound("The docs page has no such file".into()))?;
    Ok(file_response(
        asset.content_type,
        ASSET_CACHING,
        Body::from(asset.bytes),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sha2::{Digest, Sha256};

    use super::*;

    /// Every `docs/<file>` a text names, as the page names its assets.
    fn named_assets(text: &str) -> BTreeSet<&str> {
        text.split("\"docs/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect()
    }

    #[test]
    fn every_asset_is_named_by_its_contents_hash_and_typed_by_its_extension() {
        for asset in ASSETS {
            let (named, extension) = asset.name.rsplit_once('.').unwrap();
            let (_, hash) = named.rsplit_once('.').unwrap();
            let digest = Sha256::digest(asset.bytes);
            let expected: String = digest[..8]
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert_eq!(hash, expected, "{}", asset.name);
            let content_type = match extension {
                "js" => "text/javascript; charset=utf-8",
                "css" => "text/css; charset=utf-8",
                "png" => "image/png",
                _ => panic!("{}: an unexpected extension", asset.name),
            };
            assert_eq!(asset.content_type, content_type, "{}", asset.name);
        }
    }

    /// The page loads exactly the assets the function serves, from this origin only, and runs
    /// no inline script (its policy allows scripts from files of this origin alone).
    #[test]
    fn the_page_loads_exactly_the_served_assets_and_nothing_from_elsewhere() {
        let served: BTreeSet<&str> = ASSETS.iter().map(|asset| asset.name).collect();
        assert_eq!(named_assets(PAGE), served);
        assert_eq!(
            PAGE.matches("<script").count(),
            PAGE.matches("<script src=\"docs/").count()
        );
        for elsewhere in ["http:", "https:", "//", "{"] {
            assert!(!PAGE.contains(elsewhere), "the page has {elsewhere:?}");
        }
    }

    /// The OpenAPI document's examples name files the function serves, so that "Try it out"
    /// with them answers 200 (they change with Swagger UI's files: update them with it).
    #[test]
    fn the_documented_examples_name_served_assets() {
        let document: serde_json::Value =
            serde_json::from_str(super::super::meta::OPENAPI_JSON).unwrap();
        let served: BTreeSet<&str> = ASSETS.iter().map(|asset| asset.name).collect();
        let operation = &document["paths"]["/docs/{file}"]["get"];
        let example = operation["parameters"][0]["examples"]["icon"]["value"]
            .as_str()
            .unwrap();
        assert!(
            served.contains(example),
            "{example} is not served: {served:?}"
        );
        let page = document["paths"]["/docs"]["get"]["responses"]["200"]["content"]["text/html"]
            ["examples"]["page"]["value"]
            .as_str()
            .unwrap();
        let named = named_assets(page);
        assert!(
            !named.is_empty() && named.is_subset(&served),
            "{named:?} not in {served:?}"
        );
    }
}
