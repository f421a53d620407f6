"""The layers of `shared/`: each top-level module imports only from layers below it, so there is
no import cycle between them (test code, after `#[cfg(test)]`, aside)."""

import re

from conftest import REPO

SRC = REPO / "shared" / "src"
# Lowest first. A module may use modules of lower layers only.
LAYERS = [
    {"clock", "routes"},
    # A request's log span names its route.
    {"telemetry"},
    {"domain"},
    # Settings validated with the domain's types (MAIL_FROM an Email, APP_BASE_URL a BaseUrl).
    {"config"},
    # The adapters: DynamoDB, and outgoing mail (SES).
    {"store", "mail"},
    {"auth"},
    {"app"},
    {"ratelimit"},
    {"http"},
    {"handlers"},
]


def modules(src=SRC) -> set[str]:
    return {path.stem for path in src.iterdir() if path.stem != "lib" and (path.is_dir() or path.suffix == ".rs")}


def imports(module: str, src=SRC) -> set[str]:
    files = [src / f"{module}.rs"] if (src / f"{module}.rs").exists() else sorted((src / module).rglob("*.rs"))
    code = "\n".join(re.split(r"#\[cfg\(test\)\]", path.read_text())[0] for path in files)
    names = set(re.findall(r"crate::(\w+)", code))
    for group in re.findall(r"use crate::\{(.*?)\};", code, re.S):
        names |= set(re.findall(r"(?:^|[{,])\s*(\w+)", group))
    # `pub use app::AppState;` in lib.rs: `crate::AppState` is a use of `app`.
    reexports = {name: owner for owner, name in re.findall(r"pub use (\w+)::(\w+);", (src / "lib.rs").read_text())}
    return {reexports.get(name, name) for name in names} & (modules(src) - {module})


def layer_of(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if module in layer)


def test_every_module_has_a_layer():
    assert modules() == set().union(*LAYERS)


def test_modules_import_only_from_lower_layers():
    upward = {
        (module, used)
        for module in modules()
        for used in imports(module)
        if layer_of(used) >= layer_of(module)
    }
    assert not upward, f"imports that are not from a lower layer: {sorted(upward)}"


def test_the_check_sees_imports_of_every_form(tmp_path):
    """The checker itself: paths, `use crate::{...}` groups and root re-exports all count."""
    (tmp_path / "store").mkdir()
    (tmp_path / "lib.rs").write_text("pub mod app;\npub mod http;\npub mod store;\npub use app::AppState;\n")
    (tmp_path / "app.rs").write_text("")
    (tmp_path / "http.rs").write_text("")
    (tmp_path / "store" / "mod.rs").write_text(
        "use crate::{\n    AppState,\n    http::ApiError,\n};\n#[cfg(test)]\nmod tests { use crate::app; }\n")
    assert imports("store", src=tmp_path) == {"app", "http"}
