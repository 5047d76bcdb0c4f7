//! The OpenAPI 3.1 document, generated from the code: each handler's `#[utoipa::path]`, the
//! body types' `ToSchema` derives and [`RecQueryDoc`] for the hand-parsed query string, collected
//! by utoipa-axum's router from the same route list the server runs ([`super::routes`]), so a
//! route cannot be served undocumented. The constraints (lengths, patterns, ranges, enums) are
//! the validators' own rules; what the configuration decides (`n`'s maximum, list lengths, the
//! event types, the batch size) is filled in from it when the document is served. Tests check
//! each pattern against the validator it describes.

use super::config::ServiceConfig;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// No control character (Rust's `char::is_control`: U+0000–U+001F, U+007F–U+009F).
macro_rules! ctrl {
    () => {
        r"\x00-\x1f\x7f-\x9f"
    };
}
/// The whitespace `str::trim` removes that is not a control character.
macro_rules! ws {
    () => {
        r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// A query id (`user_id`, `category`): 1..=256 characters, no control character.
pub const QUERY_ID: &str = concat!("^[^", ctrl!(), "]{1,256}$");
/// A feedback id (`request_id`, `user_id`, `item_id`): no control character and not only
/// whitespace (the length is the field's `maxLength`).
pub const BODY_ID: &str = concat!(
    "^[^",
    ctrl!(),
    "]*[^",
    ctrl!(),
    ws!(),
    "][^",
    ctrl!(),
    "]*$"
);
/// One item of a comma-separated id list, whitespace around it trimmed: 1..=256 characters.
macro_rules! list_item {
    () => {
        concat!(
            r"[\t\n\x0b\x0c\r\x85",
            ws!(),
            "]*",
            "[^,",
            ctrl!(),
            ws!(),
            "]",
            "([^,",
            ctrl!(),
            "]{0,254}[^,",
            ctrl!(),
            ws!(),
            "])?",
            r"[\t\n\x0b\x0c\r\x85",
            ws!(),
            "]*"
        )
    };
}
/// A comma-separated list of ids (`recent`, `exclude`), empty allowed; the item count is
/// bounded by `serving.max_list_len`, filled in from the configuration (`{MAX}` here).
pub const ID_LIST: &str = concat!("^(", list_item!(), "(,", list_item!(), "){0,MAXLESS1})?$");
/// `exclude_seen`'s accepted spellings (case-insensitive).
pub const BOOL: &str = "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|1|0)?$";
/// `device`: at most 32 characters of `[A-Za-z0-9_-]`.
pub const DEVICE: &str = "^[A-Za-z0-9_-]{0,32}$";

/// The query parameters of `GET /recommendations` (parsed by hand in [`super::params`]; this
/// type only documents them, and a test checks the names against the parser).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RecQueryDoc {
    /// User id; unknown or absent users get popularity and session recommendations.
    #[param(min_length = 1, max_length = 256)]
    user_id: Option<String>,
    /// Number of items, 1..=serving.max_n (default serving.default_n).
    #[param(minimum = 1, maximum = 200)]
    n: Option<u32>,
    /// Comma-separated item ids of the current session, oldest first (at most serving.max_list_len).
    recent: Option<String>,
    /// Comma-separated item ids never to return (at most serving.max_list_len).
    exclude: Option<String>,
    /// Exclude items the user interacted with (default true; true/false/yes/no/1/0).
    exclude_seen: Option<String>,
    /// Only items of this category.
    #[param(min_length = 1, max_length = 256)]
    category: Option<String>,
    /// Client device (mobile, desktop, tablet, …), a bandit context.
    #[param(max_length = 32)]
    device: Option<String>,
    /// Request time, Unix seconds (default: now).
    #[param(minimum = 0, maximum = 4102444800.0)]
    ts: Option<i64>,
    /// Add to each item why it was shown: its sources, the path that served it and, when ranked,
    /// TreeSHAP contributions (true/false/yes/no/1/0; default false).
    explain: Option<String>,
    /// Maximal marginal relevance over content vectors, λ in [0, 1] (default: the variant's, else 0).
    #[param(minimum = 0, maximum = 1)]
    diversity: Option<f64>,
    /// Most items per primary category, 1..=serving.max_n (default: the variant's, else no cap).
    #[param(minimum = 1, maximum = 200)]
    max_per_category: Option<u32>,
}

/// Every error: a stable code and a message.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable, e.g. `invalid_n`, `not_ready`.
    code: String,
    message: String,
}

/// `GET /healthz`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Alive {
    status: String,
}

/// `GET /readyz` when ready (more fields describe the loaded engine).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Ready {
    status: String,
    model_version: String,
}

/// `POST /admin/reload`'s optional body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReloadRequest {
    /// Bundle directory (default: the configured one).
    bundle: Option<String>,
    /// With `state.backend = "redis"`: announce the bundle so the other replicas load it
    /// (default true).
    announce: Option<bool>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "recserve",
        description = "Two-stage recommendation service: candidate sources, LightGBM ranker, fallback chain, bandit."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security)
)]
pub struct ApiDoc;

/// `strategy`: the pipeline's strategies.
pub fn strategy_schema() -> utoipa::openapi::Object {
    use crate::pipeline::Strategy;
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            [Strategy::Ranked, Strategy::Blend, Strategy::Popular].map(Strategy::as_str),
        ))
        .build()
}

/// `sources`: the candidate sources' names.
pub fn sources_schema() -> utoipa::openapi::Array {
    let item = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            crate::retrieval::Source::ALL
                .map(|s| s.as_str())
                .into_iter()
                .chain([crate::ranking::exposure::EXPOSURE_SOURCE]),
        ));
    utoipa::openapi::ArrayBuilder::new().items(item).build()
}

/// `degraded`: `stage:reason` strings (the closed set of `pipeline::Degraded`).
pub fn degraded_schema() -> utoipa::openapi::Array {
    let item = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some("^[a-z0-9]+:[a-z_]+$"));
    utoipa::openapi::ArrayBuilder::new().items(item).build()
}

/// The document as generated from the code, before the configuration's limits are filled in.
pub fn generated() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let (_, routes) = super::routes().split_for_parts();
    doc.merge(routes);
    doc
}

/// The served document: [`generated`] with the validators' patterns (utoipa's attributes take
/// only literals, so they are set here from the constants the tests check) and the limits `cfg`
/// sets.
pub fn document(cfg: &ServiceConfig) -> Value {
    let mut v = serde_json::to_value(generated()).unwrap_or(Value::Null);
    let max_list = cfg.serving.max_list_len.max(1);
    let list = ID_LIST.replace("MAXLESS1", &(max_list - 1).to_string());
    if let Some(params) = v
        .pointer_mut("/paths/~1recommendations/get/parameters")
        .and_then(Value::as_array_mut)
    {
        for p in params {
            let name = p["name"].as_str().unwrap_or("").to_string();
            let schema = &mut p["schema"];
            match Some(name.as_str()) {
                Some("n" | "max_per_category") => schema["maximum"] = cfg.serving.max_n.into(),
                Some("explain") => schema["pattern"] = BOOL.into(),
                Some("recent" | "exclude") => schema["pattern"] = list.clone().into(),
                Some("user_id" | "category") => schema["pattern"] = QUERY_ID.into(),
                Some("exclude_seen") => schema["pattern"] = BOOL.into(),
                Some("device") => schema["pattern"] = DEVICE.into(),
                _ => {}
            }
        }
    }
    if let Some(params) = v
        .pointer_mut("/paths/~1items/get/parameters")
        .and_then(Value::as_array_mut)
    {
        for p in params {
            p["schema"]["pattern"] = list.clone().into();
        }
    }
    if let Some(props) = v.pointer_mut("/components/schemas/FeedbackIn/properties") {
        for id in ["request_id", "user_id", "item_id"] {
            props[id]["pattern"] = BODY_ID.into();
        }
        props["event"]["enum"] = cfg.feedback.events.clone().into();
        props["impression_token"]["pattern"] = "^[0-9a-fA-F]{1,64}$".into();
    }
    if let Some(b) = v.pointer_mut("/components/schemas/Batch/properties/events") {
        b["maxItems"] = cfg.feedback.max_batch.into();
    }
    v
}

/// `(method, path)` of every documented operation.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (p, ops) in paths {
            for m in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                out.push((m.clone(), p.clone()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests;
