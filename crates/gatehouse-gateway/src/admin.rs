//! The LiteLLM-compatible admin API: keys, users, teams, spend, model info.
//!
//! Only the master key, or a virtual key whose user has the `proxy_admin` role, may call it;
//! any other key gets 403 and changes nothing. Field names and response shapes follow
//! LiteLLM's (`models`, `max_budget`, `budget_duration`, `rpm_limit`, `tpm_limit`,
//! `max_parallel_requests`, `duration`, `key_alias`, `team_id`, `user_id`, `metadata`; keys
//! are identified by the raw key or by its `token`, the SHA-256 hex LiteLLM also uses).
//! A field gatehouse does not implement is refused by name when it carries a value (an
//! ignored limit would be worse than an error); `null` is accepted for any field.
//!
//! Raw keys are `sk-` and 32 base64url characters (192 random bits from the OS); only their
//! SHA-256 is stored and the raw key is returned once, by `/key/generate`,
//! `/key/regenerate` and `/user/new`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use gatehouse_pricing::Money;
use gatehouse_store::{
    KeyFilter, KeyRecord, SpendQuery, SpendRecord, Store, StoreError, TeamRecord, UserRecord,
};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::Gateway;
use crate::accounting::{Accounts, now_ms};
use crate::error::{ApiError, cap};
use crate::keys::{Caller, hash_key, hex, parse_hex32};

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 1024 * 1024;
/// Roles LiteLLM defines.
const ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];

type Res = Result<Response, ApiError>;

fn ok(v: &Value) -> Res {
    let mut res = Response::new(Body::from(v.to_string()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

fn bad(message: impl Into<String>, param: Option<&str>) -> ApiError {
    ApiError::BadRequest {
        message: message.into(),
        param: param.map(str::to_owned),
    }
}

fn store_error(e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "admin: store operation failed");
    ApiError::StoreUnavailable
}

/// Runs a handler: admin check first, then the handler; errors in the OpenAI envelope.
async fn admin<F, Fut>(gw: Arc<Gateway>, req: Request, f: F) -> Response
where
    F: FnOnce(Arc<Gateway>, Request) -> Fut,
    Fut: std::future::Future<Output = Res>,
{
    let caller = match gw.accounts.keys.verify(req.headers()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(reason = e.kind(), path = %req.uri().path(), "admin: authentication failed");
            return e.into_response();
        }
    };
    match caller {
        Caller::Open => {
            return ApiError::Forbidden(
                "The admin API needs a master key: set general_settings.master_key.".into(),
            )
            .into_response();
        }
        Caller::Key(ref k) if !k.is_admin => {
            tracing::warn!(path = %req.uri().path(), key = %k.key.key_name, "admin: refused a virtual key");
            return ApiError::Forbidden(
                "Only the master key or a proxy_admin key may call the admin API.".into(),
            )
            .into_response();
        }
        Caller::Key(ref k) => {
            if let Err(e) = k.check_usable(now_ms()) {
                return e.into_response();
            }
        }
        Caller::Master => {}
    }
    let path = req.uri().path().to_owned();
    match f(gw, req).await {
        Ok(res) => {
            tracing::info!(path = %path, "admin action");
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn body_map(req: Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_ADMIN_BODY)
        .await
        .map_err(|_| bad("request body unreadable or over 1 MB", None))?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("request body must be a JSON object", None)),
        Err(e) => Err(bad(format!("request body is not valid JSON: {e}"), None)),
    }
}

fn query(req: &Request) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(percent_decode(k), Value::String(percent_decode(v)));
        }
    }
    m
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hexv = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hexv {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------- time ----------

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for unix ms.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` (optionally followed by a time, which is ignored) → unix ms at 00:00 UTC.
fn parse_date(s: &str) -> Option<i64> {
    let s = s.get(..10)?;
    let mut it = s.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000)
}

fn opt_iso(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(iso8601(ms)))
}

fn usd(pico: i64) -> Value {
    json!(Money::from_pico(pico).as_usd())
}

fn opt_usd(pico: Option<i64>) -> Value {
    pico.map_or(Value::Null, usd)
}

// ---------- field parsing ----------

/// Reads the fields of a request body into a record, one rule per field; `null` clears.
struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn has(&self, k: &str) -> bool {
        self.map.contains_key(k)
    }

    fn string(&self, k: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.len() <= 256 => Ok(Some(Some(s.clone()))),
            Some(Value::String(_)) => Err(bad(format!("`{k}` is too long"), Some(k))),
            Some(_) => Err(bad(format!("`{k}` must be a string"), Some(k))),
        }
    }

    fn count(&self, k: &str) -> Result<Option<Option<u64>>, ApiError> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => match v.as_u64() {
                Some(n) => Ok(Some(Some(n))),
                None => Err(bad(
                    format!("`{k}` must be a whole number, 0 or more"),
                    Some(k),
                )),
            },
        }
    }

    fn money(&self, k: &str) -> Result<Option<Option<i64>>, ApiError> {
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => match v.as_f64().filter(|f| *f >= 0.0) {
                Some(f) => Money::from_usd(f)
                    .map(|m| Some(Some(m.pico())))
                    .map_err(|_| bad(format!("`{k}` is out of range"), Some(k))),
                None => Err(bad(format!("`{k}` must be a number, 0 or more"), Some(k))),
            },
        }
    }

    fn models(&self) -> Result<Option<Vec<String>>, ApiError> {
        match self.map.get("models") {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Vec::new())),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("`models` must be a list of strings", Some("models")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad("`models` must be a list of strings", Some("models"))),
        }
    }

    fn metadata(&self) -> Result<Option<Value>, ApiError> {
        match self.map.get("metadata") {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Value::Object(Map::new()))),
            Some(v @ Value::Object(_)) => {
                if v.to_string().len() > 64 * 1024 {
                    return Err(bad("`metadata` is over 64 KB", Some("metadata")));
                }
                Ok(Some(v.clone()))
            }
            Some(_) => Err(bad("`metadata` must be an object", Some("metadata"))),
        }
    }

    fn boolean(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(format!("`{k}` must be true or false"), Some(k))),
        }
    }

    fn duration(&self, k: &str) -> Result<Option<Option<String>>, ApiError> {
        let v = self.string(k)?;
        if let Some(Some(d)) = &v
            && gatehouse_store::parse_duration(d).is_none()
        {
            return Err(bad(
                format!("`{k}` must be a duration like 30s, 10m, 24h, 7d or 1mo"),
                Some(k),
            ));
        }
        Ok(v)
    }

    /// Refuses fields outside `known` that carry a value.
    fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        for (k, v) in self.map {
            if known.contains(&k.as_str()) {
                continue;
            }
            let empty = match v {
                Value::Null => true,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if !empty {
                return Err(bad(
                    format!("gatehouse does not support `{}` here", cap(k)),
                    Some(k),
                ));
            }
        }
        Ok(())
    }
}

const LIMIT_FIELDS: &[&str] = &[
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "metadata",
];

// ---------- keys ----------

/// A new raw key: `sk-` + 32 base64url characters (192 bits from the OS's generator).
fn new_raw_key() -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::Internal("no randomness"))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::with_capacity(35);
    s.push_str("sk-");
    for chunk in bytes.chunks_exact(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            s.push(ALPHABET[((n >> shift) & 63) as usize] as char);
        }
    }
    Ok(s)
}

/// LiteLLM's display form of a key: `sk-...` and its last four characters.
fn key_name(raw: &str) -> String {
    let tail = raw.get(raw.len().saturating_sub(4)..).unwrap_or_default();
    format!("sk-...{tail}")
}

/// A key named by the client: its raw value, or its `token` (SHA-256 hex).
fn key_ref(v: &str) -> [u8; 32] {
    parse_hex32(v).unwrap_or_else(|| hash_key(v))
}

fn key_json(k: &KeyRecord) -> Value {
    json!({
        "token": hex(&k.token_hash),
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "spend": usd(k.spend),
        "max_budget": opt_usd(k.max_budget),
        "expires": opt_iso(k.expires_at),
        "models": k.models,
        "aliases": {},
        "config": {},
        "user_id": k.user_id,
        "team_id": k.team_id,
        "max_parallel_requests": k.max_parallel_requests,
        "metadata": k.metadata,
        "tpm_limit": k.tpm_limit,
        "rpm_limit": k.rpm_limit,
        "budget_duration": k.budget_duration,
        "budget_reset_at": opt_iso(k.budget_reset_at),
        "blocked": k.blocked,
        "created_at": iso8601(k.created_at),
        "updated_at": iso8601(k.updated_at),
    })
}

/// Applies key fields from a request to a record.
async fn apply_key_fields(
    store: &Store,
    rec: &mut KeyRecord,
    f: &Fields<'_>,
) -> Result<(), ApiError> {
    if let Some(v) = f.string("key_alias")? {
        rec.key_alias = v;
    }
    if let Some(v) = f.models()? {
        rec.models = v;
    }
    if let Some(v) = f.money("max_budget")? {
        rec.max_budget = v;
    }
    if let Some(v) = f.duration("budget_duration")? {
        if v != rec.budget_duration {
            rec.budget_reset_at = None;
        }
        rec.budget_duration = v;
    }
    if let Some(v) = f.count("rpm_limit")? {
        rec.rpm_limit = v;
    }
    if let Some(v) = f.count("tpm_limit")? {
        rec.tpm_limit = v;
    }
    if let Some(v) = f.count("max_parallel_requests")? {
        rec.max_parallel_requests = v;
    }
    if let Some(v) = f.metadata()? {
        rec.metadata = v;
    }
    if let Some(v) = f.boolean("blocked")? {
        rec.blocked = v;
    }
    if let Some(v) = f.duration("duration")? {
        rec.expires_at = match v {
            None => None,
            Some(d) => gatehouse_store::parse_duration(&d).and_then(|d| d.add_to(now_ms())),
        };
    }
    if let Some(team) = f.string("team_id")? {
        if let Some(id) = &team
            && store.team(id).await.map_err(|e| store_error(&e))?.is_none()
        {
            return Err(bad(
                format!("team_id={} does not exist", cap(id)),
                Some("team_id"),
            ));
        }
        rec.team_id = team;
    }
    if let Some(user) = f.string("user_id")? {
        if let Some(id) = &user
            && store.user(id).await.map_err(|e| store_error(&e))?.is_none()
        {
            // LiteLLM creates the user on first mention.
            store
                .insert_user(&UserRecord::new(id.clone(), "internal_user"))
                .await
                .map_err(|e| store_error(&e))?;
        }
        rec.user_id = user;
    }
    Ok(())
}

const KEY_FIELDS: &[&str] = &[
    "key_alias",
    "duration",
    "user_id",
    "team_id",
    "blocked",
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "metadata",
    // Accepted and meaningless here.
    "send_invite_email",
];

async fn create_key(accounts: &Accounts, f: &Fields<'_>) -> Result<(String, KeyRecord), ApiError> {
    let raw = new_raw_key()?;
    let mut rec = KeyRecord::new(hash_key(&raw), key_name(&raw));
    apply_key_fields(&accounts.store, &mut rec, f).await?;
    let rec = accounts
        .store
        .insert_key(&rec)
        .await
        .map_err(|e| store_error(&e))?;
    Ok((raw, rec))
}

fn generated(raw: &str, rec: &KeyRecord) -> Value {
    let mut v = key_json(rec);
    if let Value::Object(m) = &mut v {
        m.insert("key".into(), Value::String(raw.to_owned()));
        m.insert("expires".into(), opt_iso(rec.expires_at));
    }
    v
}

/// `POST /key/generate`.
pub async fn key_generate(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let map = body_map(req).await?;
        let f = Fields { map: &map };
        if f.has("key") {
            return Err(bad(
                "gatehouse generates keys itself; custom key values are not accepted",
                Some("key"),
            ));
        }
        f.only(KEY_FIELDS)?;
        let (raw, rec) = create_key(&gw.accounts, &f).await?;
        ok(&generated(&raw, &rec))
    })
    .await
}

fn key_param(map: &Map<String, Value>) -> Result<[u8; 32], ApiError> {
    match map.get("key") {
        Some(Value::String(s)) if !s.is_empty() => Ok(key_ref(s)),
        _ => Err(bad("`key` is required", Some("key"))),
    }
}

async fn load_key(accounts: &Accounts, hash: &[u8; 32]) -> Result<KeyRecord, ApiError> {
    accounts
        .store
        .key_by_hash(hash)
        .await
        .map_err(|e| store_error(&e))?
        .ok_or_else(|| ApiError::NotFound {
            path: "key not found".into(),
        })
}

/// `POST /key/update`.
pub async fn key_update(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let map = body_map(req).await?;
        let hash = key_param(&map)?;
        let f = Fields { map: &map };
        let mut known = KEY_FIELDS.to_vec();
        known.push("key");
        f.only(&known)?;
        let mut rec = load_key(&gw.accounts, &hash).await?;
        apply_key_fields(&gw.accounts.store, &mut rec, &f).await?;
        gw.accounts
            .store
            .update_key(&rec)
            .await
            .map_err(|e| store_error(&e))?;
        gw.accounts.keys.forget(&hash);
        let rec = load_key(&gw.accounts, &hash).await?;
        let mut v = key_json(&rec);
        if let Value::Object(m) = &mut v {
            m.insert("key".into(), Value::String(hex(&rec.token_hash)));
        }
        ok(&v)
    })
    .await
}

/// `POST /key/delete`: `{"keys": [...]}` (raw keys or tokens) and/or `{"key_aliases": [...]}`.
pub async fn key_delete(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let map = body_map(req).await?;
        let mut hashes = Vec::new();
        let mut named = Vec::new();
        if let Some(keys) = map.get("keys") {
            let list = keys
                .as_array()
                .ok_or_else(|| bad("`keys` must be a list", Some("keys")))?;
            for k in list {
                let s = k
                    .as_str()
                    .ok_or_else(|| bad("`keys` must be a list of strings", Some("keys")))?;
                hashes.push(key_ref(s));
                named.push(Value::String(s.to_owned()));
            }
        }
        if let Some(aliases) = map.get("key_aliases") {
            let list = aliases
                .as_array()
                .ok_or_else(|| bad("`key_aliases` must be a list", Some("key_aliases")))?;
            for a in list {
                let alias = a.as_str().ok_or_else(|| {
                    bad(
                        "`key_aliases` must be a list of strings",
                        Some("key_aliases"),
                    )
                })?;
                let (found, _) = gw
                    .accounts
                    .store
                    .list_keys(
                        &KeyFilter {
                            key_alias: Some(alias.to_owned()),
                            ..KeyFilter::default()
                        },
                        1,
                        1000,
                    )
                    .await
                    .map_err(|e| store_error(&e))?;
                for k in found {
                    hashes.push(k.token_hash);
                    named.push(Value::String(alias.to_owned()));
                }
            }
        }
        if hashes.is_empty() {
            return Err(bad("give `keys` or `key_aliases` to delete", Some("keys")));
        }
        let deleted = gw
            .accounts
            .store
            .delete_keys(&hashes)
            .await
            .map_err(|e| store_error(&e))?;
        for h in &hashes {
            gw.accounts.keys.forget(h);
        }
        if deleted == 0 {
            return Err(ApiError::NotFound {
                path: "no such key".into(),
            });
        }
        ok(&json!({ "deleted_keys": named }))
    })
    .await
}

/// `GET /key/info?key=…`.
pub async fn key_info(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let hash = key_param(&q)?;
        let rec = load_key(&gw.accounts, &hash).await?;
        // The caller's raw key is not echoed: `key` is its token.
        ok(&json!({ "key": hex(&rec.token_hash), "info": key_json(&rec) }))
    })
    .await
}

/// `GET /key/list?page=&size=&user_id=&team_id=&key_alias=&return_full_object=`.
pub async fn key_list(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let s = |k: &str| q.get(k).and_then(Value::as_str).map(str::to_owned);
        let num =
            |k: &str, default: u32| -> Result<u32, ApiError> {
                match s(k) {
                    None => Ok(default),
                    Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        bad(format!("`{k}` must be a whole number from 1"), Some(k))
                    }),
                }
            };
        let page = num("page", 1)?;
        let size = num("size", 10)?.min(100);
        let filter = KeyFilter {
            user_id: s("user_id"),
            team_id: s("team_id"),
            key_alias: s("key_alias"),
        };
        let (keys, total) = gw
            .accounts
            .store
            .list_keys(&filter, page, size)
            .await
            .map_err(|e| store_error(&e))?;
        let full = s("return_full_object").is_some_and(|v| v == "true");
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| {
                if full {
                    key_json(k)
                } else {
                    Value::String(hex(&k.token_hash))
                }
            })
            .collect();
        ok(&json!({
            "keys": keys,
            "total_count": total,
            "current_page": page,
            "total_pages": total.div_ceil(u64::from(size)),
        }))
    })
    .await
}

/// `POST /key/regenerate` (`{"key": …}`) and `POST /key/{key}/regenerate`.
pub async fn key_regenerate(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let from_path = req
            .uri()
            .path()
            .strip_prefix("/key/")
            .and_then(|p| p.strip_suffix("/regenerate"))
            .filter(|p| !p.is_empty())
            .map(percent_decode);
        let map = body_map(req).await?;
        let old = match from_path {
            Some(k) => key_ref(&k),
            None => key_param(&map)?,
        };
        let raw = new_raw_key()?;
        let new = hash_key(&raw);
        match gw
            .accounts
            .store
            .regenerate_key(&old, &new, &key_name(&raw))
            .await
        {
            Ok(()) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::NotFound {
                    path: "key not found".into(),
                });
            }
            Err(e) => return Err(store_error(&e)),
        }
        gw.accounts.keys.forget(&old);
        let rec = load_key(&gw.accounts, &new).await?;
        ok(&generated(&raw, &rec))
    })
    .await
}

async fn set_blocked(gw: Arc<Gateway>, req: Request, blocked: bool) -> Res {
    let map = body_map(req).await?;
    let hash = key_param(&map)?;
    load_key(&gw.accounts, &hash).await?;
    gw.accounts
        .store
        .set_key_blocked(&hash, blocked)
        .await
        .map_err(|e| store_error(&e))?;
    gw.accounts.keys.forget(&hash);
    let rec = load_key(&gw.accounts, &hash).await?;
    ok(&key_json(&rec))
}

/// `POST /key/block`.
pub async fn key_block(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| set_blocked(gw, req, true)).await
}

/// `POST /key/unblock`.
pub async fn key_unblock(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| set_blocked(gw, req, false)).await
}

// ---------- users ----------

fn user_json(u: &UserRecord) -> Value {
    json!({
        "user_id": u.user_id,
        "user_email": u.user_email,
        "user_role": u.user_role,
        "models": u.models,
        "max_budget": opt_usd(u.max_budget),
        "spend": usd(u.spend),
        "budget_duration": u.budget_duration,
        "budget_reset_at": opt_iso(u.budget_reset_at),
        "tpm_limit": u.tpm_limit,
        "rpm_limit": u.rpm_limit,
        "max_parallel_requests": u.max_parallel_requests,
        "metadata": u.metadata,
        "created_at": iso8601(u.created_at),
    })
}

fn new_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// `POST /user/new`: creates a user and, unless `auto_create_key: false`, a key for it.
pub async fn user_new(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let map = body_map(req).await?;
        let f = Fields { map: &map };
        let mut known = LIMIT_FIELDS.to_vec();
        known.extend([
            "user_id",
            "user_email",
            "user_role",
            "teams",
            "auto_create_key",
            "key_alias",
            "duration",
            "send_invite_email",
            "user_alias",
        ]);
        f.only(&known)?;
        let id = f.string("user_id")?.flatten().unwrap_or_else(new_id);
        let role = f
            .string("user_role")?
            .flatten()
            .unwrap_or_else(|| "internal_user".into());
        if !ROLES.contains(&role.as_str()) {
            return Err(bad(
                format!("`user_role` must be one of {ROLES:?}"),
                Some("user_role"),
            ));
        }
        let store = &gw.accounts.store;
        if store
            .user(&id)
            .await
            .map_err(|e| store_error(&e))?
            .is_some()
        {
            return Err(bad(
                format!("user_id={} already exists", cap(&id)),
                Some("user_id"),
            ));
        }
        let teams: Vec<String> = match map.get("teams") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("`teams` must be a list of team ids", Some("teams")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("`teams` must be a list of team ids", Some("teams"))),
        };
        for t in &teams {
            if store.team(t).await.map_err(|e| store_error(&e))?.is_none() {
                return Err(bad(
                    format!("team_id={} does not exist", cap(t)),
                    Some("teams"),
                ));
            }
        }
        let mut u = UserRecord::new(id.clone(), role);
        if let Some(v) = f.string("user_email")? {
            u.user_email = v;
        }
        if let Some(v) = f.models()? {
            u.models = v;
        }
        if let Some(v) = f.money("max_budget")? {
            u.max_budget = v;
        }
        if let Some(v) = f.duration("budget_duration")? {
            u.budget_duration = v;
        }
        if let Some(v) = f.count("rpm_limit")? {
            u.rpm_limit = v;
        }
        if let Some(v) = f.count("tpm_limit")? {
            u.tpm_limit = v;
        }
        if let Some(v) = f.count("max_parallel_requests")? {
            u.max_parallel_requests = v;
        }
        if let Some(v) = f.metadata()? {
            u.metadata = v;
        }
        let u = store.insert_user(&u).await.map_err(|e| store_error(&e))?;
        for t in &teams {
            store
                .add_team_member(t, &id)
                .await
                .map_err(|e| store_error(&e))?;
        }
        let mut out = user_json(&u);
        if let Value::Object(m) = &mut out {
            m.insert("teams".into(), json!(teams));
        }
        if f.boolean("auto_create_key")?.unwrap_or(true) {
            let mut key_fields = Map::new();
            key_fields.insert("user_id".into(), Value::String(id));
            for k in ["models", "key_alias", "duration"] {
                if let Some(v) = map.get(k) {
                    key_fields.insert(k.into(), v.clone());
                }
            }
            let (raw, rec) = create_key(&gw.accounts, &Fields { map: &key_fields }).await?;
            if let Value::Object(m) = &mut out {
                m.insert("key".into(), Value::String(raw));
                m.insert("token".into(), Value::String(hex(&rec.token_hash)));
                m.insert("key_name".into(), Value::String(rec.key_name));
                m.insert("expires".into(), opt_iso(rec.expires_at));
            }
        }
        ok(&out)
    })
    .await
}

/// `GET /user/info?user_id=…`.
pub async fn user_info(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let id = q
            .get("user_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`user_id` is required", Some("user_id")))?;
        let store = &gw.accounts.store;
        let u = store
            .user(id)
            .await
            .map_err(|e| store_error(&e))?
            .ok_or_else(|| ApiError::NotFound {
                path: "user not found".into(),
            })?;
        let keys = store.keys_of_user(id).await.map_err(|e| store_error(&e))?;
        let team_ids = store.teams_of_user(id).await.map_err(|e| store_error(&e))?;
        let mut teams = Vec::new();
        for t in &team_ids {
            if let Some(t) = store.team(t).await.map_err(|e| store_error(&e))? {
                teams.push(team_json(&t));
            }
        }
        ok(&json!({
            "user_id": id,
            "user_info": user_json(&u),
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
            "teams": teams,
        }))
    })
    .await
}

// ---------- teams ----------

fn team_json(t: &TeamRecord) -> Value {
    json!({
        "team_id": t.team_id,
        "team_alias": t.team_alias,
        "models": t.models,
        "max_budget": opt_usd(t.max_budget),
        "spend": usd(t.spend),
        "budget_duration": t.budget_duration,
        "budget_reset_at": opt_iso(t.budget_reset_at),
        "tpm_limit": t.tpm_limit,
        "rpm_limit": t.rpm_limit,
        "max_parallel_requests": t.max_parallel_requests,
        "members": t.members,
        "members_with_roles": t.members.iter().map(|m| json!({"user_id": m, "role": "user"})).collect::<Vec<_>>(),
        "metadata": t.metadata,
        "blocked": t.blocked,
        "created_at": iso8601(t.created_at),
    })
}

/// `POST /team/new`.
pub async fn team_new(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let map = body_map(req).await?;
        let f = Fields { map: &map };
        let mut known = LIMIT_FIELDS.to_vec();
        known.extend([
            "team_id",
            "team_alias",
            "members",
            "members_with_roles",
            "blocked",
        ]);
        f.only(&known)?;
        let id = f.string("team_id")?.flatten().unwrap_or_else(new_id);
        let store = &gw.accounts.store;
        if store
            .team(&id)
            .await
            .map_err(|e| store_error(&e))?
            .is_some()
        {
            return Err(bad(
                format!("team_id={} already exists", cap(&id)),
                Some("team_id"),
            ));
        }
        let mut t = TeamRecord::new(id.clone());
        if let Some(v) = f.string("team_alias")? {
            t.team_alias = v;
        }
        if let Some(v) = f.models()? {
            t.models = v;
        }
        if let Some(v) = f.money("max_budget")? {
            t.max_budget = v;
        }
        if let Some(v) = f.duration("budget_duration")? {
            t.budget_duration = v;
        }
        if let Some(v) = f.count("rpm_limit")? {
            t.rpm_limit = v;
        }
        if let Some(v) = f.count("tpm_limit")? {
            t.tpm_limit = v;
        }
        if let Some(v) = f.count("max_parallel_requests")? {
            t.max_parallel_requests = v;
        }
        if let Some(v) = f.metadata()? {
            t.metadata = v;
        }
        if let Some(v) = f.boolean("blocked")? {
            t.blocked = v;
        }
        let mut members = Vec::new();
        for field in ["members", "members_with_roles"] {
            match map.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) => {
                    for m in a {
                        let id = m
                            .as_str()
                            .or_else(|| m.get("user_id").and_then(Value::as_str))
                            .ok_or_else(|| {
                                bad(format!("`{field}` entries need a user_id"), Some(field))
                            })?;
                        members.push(id.to_owned());
                    }
                }
                Some(_) => return Err(bad(format!("`{field}` must be a list"), Some(field))),
            }
        }
        let t = store.insert_team(&t).await.map_err(|e| store_error(&e))?;
        for m in &members {
            if store.user(m).await.map_err(|e| store_error(&e))?.is_none() {
                store
                    .insert_user(&UserRecord::new(m.clone(), "internal_user"))
                    .await
                    .map_err(|e| store_error(&e))?;
            }
            store
                .add_team_member(&id, m)
                .await
                .map_err(|e| store_error(&e))?;
        }
        let t = store
            .team(&id)
            .await
            .map_err(|e| store_error(&e))?
            .unwrap_or(t);
        ok(&team_json(&t))
    })
    .await
}

/// `GET /team/info?team_id=…`.
pub async fn team_info(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let id = q
            .get("team_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`team_id` is required", Some("team_id")))?;
        let store = &gw.accounts.store;
        let t = store
            .team(id)
            .await
            .map_err(|e| store_error(&e))?
            .ok_or_else(|| ApiError::NotFound {
                path: "team not found".into(),
            })?;
        let (keys, _) = store
            .list_keys(
                &KeyFilter {
                    team_id: Some(id.to_owned()),
                    ..KeyFilter::default()
                },
                1,
                1000,
            )
            .await
            .map_err(|e| store_error(&e))?;
        ok(&json!({
            "team_id": id,
            "team_info": team_json(&t),
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
        }))
    })
    .await
}

// ---------- spend ----------

fn spend_json(r: &SpendRecord) -> Value {
    json!({
        "request_id": r.request_id,
        "api_key": r.token_hash.map(|h| hex(&h)),
        "model": r.model,
        "model_id": r.deployment_id,
        "spend": usd(r.spend),
        "startTime": iso8601(r.started_at),
        "endTime": iso8601(r.ended_at),
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens.saturating_add(r.completion_tokens),
        "cached_tokens": r.cached_tokens,
        "user": r.user_id,
        "team_id": r.team_id,
        "status": if r.status < 400 { "success" } else { "failure" },
    })
}

fn date_range(q: &Map<String, Value>) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let get = |k: &str| -> Result<Option<i64>, ApiError> {
        match q.get(k).and_then(Value::as_str) {
            None | Some("") => Ok(None),
            Some(s) => parse_date(s)
                .map(Some)
                .ok_or_else(|| bad(format!("`{k}` must be a date, YYYY-MM-DD"), Some(k))),
        }
    };
    // end_date is inclusive: the whole day.
    Ok((get("start_date")?, get("end_date")?.map(|e| e + 86_400_000)))
}

/// `GET /spend/logs?api_key=&user_id=&team_id=&request_id=&start_date=&end_date=`.
pub async fn spend_logs(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let s = |k: &str| {
            q.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let (start_ms, end_ms) = date_range(&q)?;
        let rows = gw
            .accounts
            .store
            .spend_logs(&SpendQuery {
                token_hash: s("api_key").map(|k| key_ref(&k)),
                user_id: s("user_id"),
                team_id: s("team_id"),
                request_id: s("request_id"),
                start_ms,
                end_ms,
                limit: None,
            })
            .await
            .map_err(|e| store_error(&e))?;
        ok(&Value::Array(rows.iter().map(spend_json).collect()))
    })
    .await
}

/// `GET /global/spend`: total spend over all time (or `start_date`/`end_date`).
pub async fn global_spend(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let (start, end) = date_range(&q)?;
        let total = gw
            .accounts
            .store
            .global_spend(start.unwrap_or(0), end.unwrap_or(i64::MAX))
            .await
            .map_err(|e| store_error(&e))?;
        ok(&json!({ "spend": usd(total), "max_budget": Value::Null }))
    })
    .await
}

/// `GET /model/info` (and `/v1/model/info`): deployments without credentials.
pub async fn model_info(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, _req| async move {
        let mut res = Response::new(Body::from(gw.model_info.clone()));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        *res.status_mut() = StatusCode::OK;
        Ok(res)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_date("2023-11-14"), Some(1_699_920_000_000));
        assert_eq!(parse_date("2024-02-29T10:00"), Some(1_709_164_800_000));
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("nope"), None);
        for days in [-1000, 0, 59, 60, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn keys_are_long_random_and_named_like_litellm() {
        let a = new_raw_key().unwrap();
        let b = new_raw_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-") && a.len() == 35, "{a}");
        assert_eq!(key_name("sk-abcdefgh"), "sk-...efgh");
        assert_eq!(key_ref(&hex(&hash_key(&a))), hash_key(&a));
        assert_eq!(key_ref(&a), hash_key(&a));
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let m: Map<String, Value> = serde_json::from_str(
            r#"{"models":["a"],"model_max_budget":{"a":1},"tags":null,"aliases":{}}"#,
        )
        .unwrap();
        let e = Fields { map: &m }.only(LIMIT_FIELDS).unwrap_err();
        assert!(e.to_string().contains("model_max_budget"), "{e}");
    }
}
