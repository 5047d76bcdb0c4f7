//! The OpenAPI 3.1 document, kept by hand next to the routes; a test checks that every route the
//! router serves is documented and every documented path is served.

use serde_json::{Value, json};

/// (method, path) of every public route; the router is built from the same handlers.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/recommendations"),
    ("post", "/feedback"),
    ("post", "/feedback/batch"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/admin/reload"),
    ("get", "/admin/bandit"),
];

fn error_response(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

pub fn spec() -> Value {
    let q = |name: &str, desc: &str, schema: Value| json!({ "name": name, "in": "query", "required": false, "description": desc, "schema": schema });
    json!({
        "openapi": "3.1.0",
        "info": { "title": "recserve", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Two-stage recommendation service: candidate sources, LightGBM ranker, fallback chain, bandit." },
        "paths": {
            "/recommendations": { "get": {
                "summary": "Recommend items for a user and/or a session",
                "parameters": [
                    q("user_id", "User id; unknown or absent users get popularity and session recommendations.", json!({"type": "string", "maxLength": 256})),
                    q("n", "Number of items, 1..=serving.max_n (default serving.default_n).", json!({"type": "integer", "minimum": 1})),
                    q("recent", "Comma-separated item ids of the current session, oldest first.", json!({"type": "string"})),
                    q("exclude", "Comma-separated item ids never to return.", json!({"type": "string"})),
                    q("exclude_seen", "Exclude items the user interacted with (default true).", json!({"type": "boolean"})),
                    q("category", "Only items of this category.", json!({"type": "string"})),
                    q("device", "Client device (mobile, desktop, tablet), a bandit context.", json!({"type": "string"})),
                    q("ts", "Request time, Unix seconds (default: now).", json!({"type": "integer"})),
                    { "name": "X-Variant", "in": "header", "required": false, "description": "A/B variant; unknown or missing selects the default.", "schema": {"type": "string"} },
                    { "name": "X-Request-Id", "in": "header", "required": false, "description": "Echoed; generated when absent.", "schema": {"type": "string"} }
                ],
                "responses": {
                    "200": { "description": "Ranked items", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Recommendations" } } } },
                    "400": error_response("Invalid parameter"),
                    "414": error_response("Query string too long"),
                    "503": error_response("Overloaded or not ready (Retry-After)")
                }
            } },
            "/feedback": { "post": {
                "summary": "Record one feedback event; 202 once it is durably on disk",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/FeedbackEvent" } } } },
                "responses": { "202": { "description": "Durably recorded", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/FeedbackAck" } } } },
                               "400": error_response("Invalid event"), "413": error_response("Body too large"),
                               "415": error_response("Not JSON"), "503": error_response("Storage unavailable") }
            } },
            "/feedback/batch": { "post": {
                "summary": "Record several feedback events in one durable write",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["events"],
                    "properties": { "events": { "type": "array", "items": { "$ref": "#/components/schemas/FeedbackEvent" } } } } } } },
                "responses": { "202": { "description": "All events durably recorded", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/FeedbackAck" } } } },
                               "400": error_response("Invalid event (none recorded)"), "413": error_response("Body too large"),
                               "415": error_response("Not JSON"), "503": error_response("Storage unavailable") }
            } },
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "The process is alive" } } } },
            "/readyz": { "get": { "summary": "Readiness: a bundle is loaded and warmed up",
                                  "responses": { "200": { "description": "Ready" }, "503": error_response("Not ready") } } },
            "/metrics": { "get": { "summary": "Prometheus metrics (text exposition format)",
                                   "responses": { "200": { "description": "Metrics", "content": { "text/plain": { "schema": { "type": "string" } } } } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1 document" } } } },
            "/admin/reload": { "post": {
                "summary": "Load a bundle beside the serving one and swap it in atomically",
                "security": [ { "bearer": [] } ],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object",
                    "properties": { "bundle": { "type": "string", "description": "Bundle directory (default: the configured one)" } } } } } },
                "responses": { "200": { "description": "Reloaded" }, "401": error_response("Missing or wrong token"),
                               "409": error_response("A reload is running"), "422": error_response("Bundle refused; the old one keeps serving") }
            } },
            "/admin/bandit": { "get": {
                "summary": "Bandit statistics per context and arm (pulls, rewards, means)",
                "security": [ { "bearer": [] } ],
                "responses": { "200": { "description": "Arm statistics" }, "401": error_response("Missing or wrong token") }
            } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"],
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Recommendations": { "type": "object", "required": ["request_id", "variant", "model_version", "strategy", "degraded", "items"],
                    "properties": {
                        "request_id": { "type": "string" }, "user_id": { "type": ["string", "null"] },
                        "variant": { "type": "string" }, "model_version": { "type": "string" },
                        "strategy": { "type": "string", "enum": ["ranked", "blend", "popular"] },
                        "degraded": { "type": "array", "items": { "type": "string" } },
                        "arm": { "type": "string", "description": "Bandit arm, when the variant uses the bandit" },
                        "items": { "type": "array", "items": { "type": "object", "required": ["item_id", "score", "sources"], "properties": {
                            "item_id": { "type": "string" }, "score": { "type": "number" },
                            "sources": { "type": "array", "items": { "type": "string", "enum": ["cf", "content", "session", "popular", "item2item"] } } } } }
                    } },
                "FeedbackEvent": { "type": "object", "required": ["request_id", "user_id", "item_id", "event"], "properties": {
                    "request_id": { "type": "string" }, "user_id": { "type": "string" }, "item_id": { "type": "string" },
                    "event": { "type": "string", "description": "One of feedback.events (config)" },
                    "value": { "type": "number" }, "ts": { "type": "integer", "description": "Unix seconds" } } },
                "FeedbackAck": { "type": "object", "properties": { "accepted": { "type": "integer" }, "attributed": { "type": "integer" }, "last_seq": { "type": "integer" } } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let spec = super::spec();
        let paths = spec["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (p, ops) in paths {
            for m in ops.as_object().unwrap().keys() {
                documented.push((m.clone(), p.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = super::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
