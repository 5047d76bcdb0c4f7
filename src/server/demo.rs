//! The demo page: `GET /` serves one embedded HTML file (no JavaScript build step) that calls the
//! public API like any client — `/recommendations` with a user id or an anonymous session,
//! `POST /feedback` on a click — and `GET /items` for the item metadata it shows. The page gets
//! the A/B treatments and a few known user ids inlined at serve time; nothing here is on the
//! recommendation path.

use super::error::ApiError;
use super::params;
use super::state::AppState;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::Html;
use serde::Serialize;
use std::sync::Arc;

const PAGE: &str = include_str!("demo.html");
/// Where the page takes its start-up data.
const BOOT_MARK: &str = "/*BOOT*/{}";
/// Known users offered in the page's user picker.
const PICKER_USERS: usize = 12;

#[derive(Serialize)]
struct Boot<'a> {
    variants: Vec<&'a str>,
    default_variant: &'a str,
    users: Vec<&'a str>,
    /// Whether the page asks for per-item explanations (`explain=true`).
    explain: bool,
}

/// `GET /`: the demo page.
#[utoipa::path(get, path = "/", summary = "The demo page (HTML)",
    responses((status = 200, description = "The page", body = String, content_type = "text/html")))]
pub async fn page(State(st): State<Arc<AppState>>) -> Html<String> {
    let engine = st.engine.load_full();
    let users = engine
        .as_ref()
        .map(|e| {
            // Users with some history make the demo's lists personal.
            let model = &e.model;
            (0..model.n_users() as u32)
                .filter(|&u| model.history(u).0.len() >= 5)
                .take(PICKER_USERS)
                .map(|u| model.user_ids[u as usize].as_str())
                .collect()
        })
        .unwrap_or_default();
    let boot = Boot {
        variants: st
            .variants
            .variants
            .iter()
            .map(|v| v.name.as_str())
            .collect(),
        default_variant: &st.variants.default,
        users,
        explain: false,
    };
    // `</` cannot end the script element early: JSON escapes it.
    let json = serde_json::to_string(&boot)
        .unwrap_or_else(|_| "{}".into())
        .replace("</", "<\\/");
    Html(PAGE.replacen(BOOT_MARK, &json, 1))
}

/// One item's metadata from the bundle.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemMeta {
    pub item_id: String,
    /// The item's categories (the bundle's category vocabulary).
    pub categories: Vec<String>,
}

/// `GET /items`' answer: the known ids among those asked for, in the order asked.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemsOut {
    pub items: Vec<ItemMeta>,
}

/// `GET /items`' query (parsed by hand below; this documents it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ItemsQueryDoc {
    /// Comma-separated item ids (at most serving.max_list_len); unknown ids are left out.
    ids: String,
}

/// `GET /items?ids=a,b`: categories of known items.
#[utoipa::path(get, path = "/items", summary = "Item metadata (categories) for a list of ids",
    params(ItemsQueryDoc),
    responses(
        (status = 200, description = "The known items", body = ItemsOut),
        (status = 400, description = "Invalid parameter", body = super::openapi::ErrorBody),
        (status = 414, description = "Query string too long", body = super::openapi::ErrorBody),
        (status = 503, description = "Not ready", body = super::openapi::ErrorBody),
    ))]
pub async fn items(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ItemsOut>, ApiError> {
    let mut ids = None;
    for pair in raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match params::decode_component(k)?.as_str() {
            "ids" if ids.is_none() => {
                let v = params::decode_component(v)?;
                ids = Some(params::parse_list(
                    "ids",
                    "invalid_ids",
                    &v,
                    st.cfg.serving.max_list_len,
                )?);
            }
            "ids" => {
                return Err(ApiError::bad(
                    "duplicate_parameter",
                    "parameter \"ids\" given twice",
                ));
            }
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown parameter {other:?}; accepted: ids"),
                ));
            }
        }
    }
    let ids = ids.ok_or_else(|| ApiError::bad("invalid_ids", "ids is required"))?;
    let engine = st.current()?;
    let model = &engine.model;
    let items = ids
        .into_iter()
        .filter_map(|id| {
            let &ix = model.item_index.get(id.as_str())?;
            let categories = model
                .item_categories(ix)
                .iter()
                .filter_map(|&c| model.categories.get(c as usize).cloned())
                .collect();
            Some(ItemMeta {
                item_id: id,
                categories,
            })
        })
        .collect();
    Ok(Json(ItemsOut { items }))
}
