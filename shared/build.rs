//! Build-time work, so that the functions do none of it at run time: the hand-kept
//! `openapi.yaml` turned into the JSON `GET /openapi.json` serves, and the docs page's files
//! named by their content's hash (`GET /docs`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use swagger_ui_redist::SwaggerUi;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    openapi_json(manifest, &out);
    docs_page(manifest, &out);
}

fn openapi_json(manifest: &Path, out: &Path) {
    let source = manifest.join("../openapi.yaml");
    println!("cargo::rerun-if-changed={}", source.display());
    let yaml = fs::read_to_string(&source).expect("openapi.yaml is readable");
    let document: serde_json::Value =
        serde_norway::from_str(&yaml).expect("openapi.yaml is valid YAML");
    fs::write(out.join("openapi.json"), document.to_string()).expect("OUT_DIR is writable");
}

/// Swagger UI's files (from the swagger-ui-redist crate) and the page's own
/// (`src/handlers/docs/`), each written to `OUT_DIR/docs/` as `<stem>.<hash>.<extension>`, the
/// hash being the first 16 hex digits of its SHA-256; and `docs.rs`, which embeds them (`ASSETS`)
/// and the page with every `{file name}` replaced by the hashed name (`PAGE`).
fn docs_page(manifest: &Path, out: &Path) {
    let own = manifest.join("src/handlers/docs");
    println!("cargo::rerun-if-changed={}", own.display());
    let swagger_ui = |name: &str| {
        let (_, bytes) = SwaggerUi::static_files()
            .iter()
            .find(|(file, _)| file.file_name() == name)
            .unwrap_or_else(|| panic!("swagger-ui-redist has no {name}"));
        bytes.to_vec()
    };
    let own_file =
        |name: &str| fs::read(own.join(name)).expect("the docs page's files are readable");
    let files = [
        ("swagger-ui.css", swagger_ui("swagger-ui.css")),
        ("index.css", swagger_ui("index.css")),
        ("swagger-ui-bundle.js", swagger_ui("swagger-ui-bundle.js")),
        ("favicon-32x32.png", swagger_ui("favicon-32x32.png")),
        ("swagger-init.js", own_file("swagger-init.js")),
    ];

    let assets = out.join("docs");
    // Files of earlier contents would pile up under their old names.
    if assets.exists() {
        fs::remove_dir_all(&assets).expect("OUT_DIR/docs is removable");
    }
    fs::create_dir(&assets).expect("OUT_DIR is writable");
    let mut page = String::from_utf8(own_file("page.html")).expect("page.html is UTF-8");
    let mut table = String::new();
    for (name, bytes) in files {
        let (stem, extension) = name.rsplit_once('.').expect("a file name has an extension");
        let digest = Sha256::digest(&bytes);
        let hash: String = digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let hashed = format!("{stem}.{hash}.{extension}");
        let content_type = match extension {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "png" => "image/png",
            _ => panic!("no content type for {name}"),
        };
        fs::write(assets.join(&hashed), &bytes).expect("OUT_DIR/docs is writable");
        let placeholder = format!("{{{name}}}");
        assert!(
            page.contains(&placeholder),
            "page.html does not load {name}"
        );
        page = page.replace(&placeholder, &hashed);
        writeln!(
            table,
            "    Asset {{ name: {hashed:?}, content_type: {content_type:?}, \
             bytes: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/docs/{hashed}\")) }},"
        )
        .expect("writing to a String");
    }
    let generated = format!(
        "/// The docs page, naming its assets by their hashed names.\n\
         pub(super) const PAGE: &str = {page:?};\n\n\
         /// Every file the page loads.\n\
         pub(super) const ASSETS: &[Asset] = &[\n{table}];\n"
    );
    fs::write(out.join("docs.rs"), generated).expect("OUT_DIR is writable");
}
