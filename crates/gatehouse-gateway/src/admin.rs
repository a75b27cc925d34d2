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
//! `/key/regenerate` and `/user/new`. `/key/info` and `/key/update` echo in `key` whatever
//! the caller named the key by (as LiteLLM does). No raw key is ever logged: a key that is
//! part of a path (`/key/{key}/regenerate`) is logged as the first 8 hex digits of its token.
//! `key_alias` is unique among keys (LiteLLM's `_enforce_unique_key_alias`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use gatehouse_pricing::Money;
use gatehouse_store::{
    KeyFilter, KeyRecord, SpendDay, SpendQuery, SpendRecord, Store, StoreError, TeamRecord,
    UserRecord,
};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::Gateway;
use crate::accounting::{Accounts, now_ms};
use crate::error::{ApiError, cap, close_unread};
use crate::keys::{Caller, hash_key, hex, parse_hex32};

/// 9999-12-31T23:59:59.999Z, the latest instant a duration may reach.
const LATEST_TIME_MS: i64 = 253_402_300_799_999;
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
    if let StoreError::AliasTaken { alias } = e {
        return alias_taken(alias);
    }
    tracing::error!(error = %e, "admin: store operation failed");
    ApiError::StoreUnavailable
}

/// LiteLLM's answer when another key has the alias.
fn alias_taken(alias: &str) -> ApiError {
    bad(
        format!(
            "Key with alias '{}' already exists. Unique key aliases across all keys are required.",
            cap(alias)
        ),
        Some("key_alias"),
    )
}

/// The path as it may be logged: a key named in it (`/key/{key}/regenerate`) becomes
/// `{token:<first 8 hex digits of its token>}`, which identifies it without revealing it.
fn loggable_path(path: &str) -> String {
    match path
        .strip_prefix("/key/")
        .and_then(|p| p.strip_suffix("/regenerate"))
    {
        Some(k) if !k.is_empty() => {
            let token = hex(&key_ref(&percent_decode(k)));
            format!(
                "/key/{{token:{}}}/regenerate",
                token.get(..8).unwrap_or_default()
            )
        }
        _ => cap(path),
    }
}

/// Runs a handler: admin check first, then the handler; errors in the OpenAI envelope.
async fn admin<F, Fut>(gw: Arc<Gateway>, req: Request, f: F) -> Response
where
    F: FnOnce(Arc<Gateway>, Request) -> Fut,
    Fut: std::future::Future<Output = Res>,
{
    let path = loggable_path(req.uri().path());
    if let Err(e) = admit_admin(&gw, req.headers(), &path).await {
        let mut res = e.into_response();
        close_unread(&mut res, req.version());
        return res;
    }
    match f(gw, req).await {
        Ok(res) => {
            tracing::info!(path = %path, "admin action");
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The admin check: the master key, or a usable key of a `proxy_admin` user.
async fn admit_admin(gw: &Gateway, headers: &http::HeaderMap, path: &str) -> Result<(), ApiError> {
    let caller = match gw.accounts.keys.verify(headers).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(reason = e.kind(), path = %path, "admin: authentication failed");
            return Err(e);
        }
    };
    match caller {
        Caller::Open => Err(ApiError::Forbidden(
            "The admin API needs a master key: set general_settings.master_key.".into(),
        )),
        Caller::Key(ref k) if !k.is_admin => {
            tracing::warn!(path = %path, key = %k.key.key_name, "admin: refused a virtual key");
            Err(ApiError::Forbidden(
                "Only the master key or a proxy_admin key may call the admin API.".into(),
            ))
        }
        Caller::Key(ref k) => k.check_usable(now_ms()),
        Caller::Master => Ok(()),
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
    // Exactly `DDDD-DD-DD`: no signs, no short or long fields.
    let shaped = s.bytes().enumerate().all(|(i, b)| {
        if i == 4 || i == 7 {
            b == b'-'
        } else {
            b.is_ascii_digit()
        }
    });
    if !shaped {
        return None;
    }
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

    /// A list of strings; `null` is the empty list.
    fn strings(&self, k: &str) -> Result<Option<Vec<String>>, ApiError> {
        let not_strings = || bad(format!("`{k}` must be a list of strings"), Some(k));
        match self.map.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Vec::new())),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(not_strings))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(not_strings()),
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

    /// A LiteLLM duration (`30s`, `10m`, `24h`, `7d`, `1mo` …) that, added to now, stays a
    /// representable date (at most 9999-12-31): a longer one would overflow into "never"
    /// (no expiry, no reset), so it is refused instead. Given as the text and the instant
    /// (unix ms) one period from now.
    fn duration_ending(&self, k: &str) -> Result<Option<Option<(String, i64)>>, ApiError> {
        let d = match self.string(k)? {
            None => return Ok(None),
            Some(None) => return Ok(Some(None)),
            Some(Some(d)) => d,
        };
        let Some(parsed) = gatehouse_store::parse_duration(&d) else {
            return Err(bad(
                format!("`{k}` must be a duration like 30s, 10m, 24h, 7d or 1mo"),
                Some(k),
            ));
        };
        let Some(at) = parsed.add_to(now_ms()).filter(|at| *at <= LATEST_TIME_MS) else {
            return Err(bad(
                format!("`{k}` is too long: it must end by 9999-12-31"),
                Some(k),
            ));
        };
        Ok(Some(Some((d, at))))
    }

    /// [`Fields::duration_ending`]'s text.
    fn duration(&self, k: &str) -> Result<Option<Option<String>>, ApiError> {
        Ok(self.duration_ending(k)?.map(|v| v.map(|(d, _)| d)))
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
    if let Some(v) = f.strings("models")? {
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
    if let Some(v) = f.duration_ending("duration")? {
        rec.expires_at = v.map(|(_, at)| at);
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

/// The fields of `/key/update` and `/key/regenerate`: `key`, which names the key, then
/// [`KEY_FIELDS`].
const KEY_CHANGE_FIELDS: &[&str] = &[
    "key",
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

/// The fields of a key's settings (`/key/generate`): [`KEY_CHANGE_FIELDS`] but `key`.
const KEY_FIELDS: &[&str] = match KEY_CHANGE_FIELDS.split_first() {
    Some((_, settings)) => settings,
    None => &[],
};

/// Refuses a `key_alias` that a key already has, before anything else is written (for
/// `/user/new`). Writes of a key need no such check: the store's unique index refuses a
/// taken alias race-free, as [`StoreError::AliasTaken`], which [`store_error`] turns into
/// the same answer.
async fn check_alias_free(store: &Store, alias: Option<&str>) -> Result<(), ApiError> {
    if let Some(alias) = alias
        && store
            .key_by_alias(alias)
            .await
            .map_err(|e| store_error(&e))?
            .is_some()
    {
        return Err(alias_taken(alias));
    }
    Ok(())
}

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

/// The answer of `/key/generate` and `/key/regenerate`: the key's settings, the raw key
/// (shown this once) and, as LiteLLM's `token_id`, its token.
fn generated(raw: &str, rec: &KeyRecord) -> Value {
    let mut v = key_json(rec);
    if let Value::Object(m) = &mut v {
        m.insert("key".into(), Value::String(raw.to_owned()));
        m.insert("token_id".into(), Value::String(hex(&rec.token_hash)));
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
    key_param_named(map).map(|(_, h)| h)
}

/// The `key` parameter as the caller wrote it (raw key or token) and the token it names.
fn key_param_named(map: &Map<String, Value>) -> Result<(&str, [u8; 32]), ApiError> {
    match map.get("key") {
        Some(Value::String(s)) if !s.is_empty() => Ok((s.as_str(), key_ref(s))),
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
        let (named, hash) = key_param_named(&map)?;
        let f = Fields { map: &map };
        f.only(KEY_CHANGE_FIELDS)?;
        let mut rec = load_key(&gw.accounts, &hash).await?;
        apply_key_fields(&gw.accounts.store, &mut rec, &f).await?;
        gw.accounts
            .store
            .update_key(&rec)
            .await
            .map_err(|e| store_error(&e))?;
        gw.accounts.keys.forget(&hash);
        let rec = load_key(&gw.accounts, &hash).await?;
        // LiteLLM answers `{"key": <as the caller named it>, …the key's fields}`.
        let mut v = key_json(&rec);
        if let Value::Object(m) = &mut v {
            m.insert("key".into(), Value::String(named.to_owned()));
        }
        ok(&v)
    })
    .await
}

/// `POST /key/delete`: `{"keys": [...]}` (raw keys or tokens) and/or `{"key_aliases": [...]}`.
/// All or nothing, as LiteLLM promises: 404 when none of them exists, 400 when only some do
/// (and then nothing is deleted); `deleted_keys` echoes what the caller named.
pub async fn key_delete(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let map = body_map(req).await?;
        let f = Fields { map: &map };
        let keys = f.strings("keys")?.unwrap_or_default();
        let aliases = f.strings("key_aliases")?.unwrap_or_default();
        if keys.is_empty() && aliases.is_empty() {
            return Err(bad("give `keys` or `key_aliases` to delete", Some("keys")));
        }
        let mut hashes: Vec<[u8; 32]> = keys.iter().map(|k| key_ref(k)).collect();
        // Aliases that name no key are counted, so that the answer can say not all exist.
        let mut missing_aliases = 0usize;
        for alias in &aliases {
            match gw
                .accounts
                .store
                .key_by_alias(alias)
                .await
                .map_err(|e| store_error(&e))?
            {
                Some(h) => hashes.push(h),
                None => missing_aliases += 1,
            }
        }
        let mut distinct = hashes;
        distinct.sort_unstable();
        distinct.dedup();
        // When some alias names no key, `wanted` cannot be met: the store counts the rest and
        // deletes nothing.
        let wanted = distinct.len() + missing_aliases;
        let found = gw
            .accounts
            .store
            .delete_keys_all_or_none(&distinct, wanted)
            .await
            .map_err(|e| store_error(&e))?;
        if found == 0 {
            return Err(ApiError::NotFound {
                path: "No keys found".into(),
            });
        }
        if usize::try_from(found).ok() != Some(wanted) {
            return Err(bad(
                format!(
                    "Not all keys passed in were deleted, so none was: keys passed in={wanted}, \
                     keys found={found}"
                ),
                Some(if keys.is_empty() {
                    "key_aliases"
                } else {
                    "keys"
                }),
            ));
        }
        for h in &distinct {
            gw.accounts.keys.forget(h);
        }
        let named: Vec<Value> = keys.into_iter().chain(aliases).map(Value::String).collect();
        ok(&json!({ "deleted_keys": named }))
    })
    .await
}

/// `GET /key/info?key=…`: `{"key": <as the caller named it>, "info": …}`; like LiteLLM,
/// `info` leaves out the `token`.
pub async fn key_info(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let (named, hash) = key_param_named(&q)?;
        let rec = load_key(&gw.accounts, &hash).await?;
        let mut info = key_json(&rec);
        if let Value::Object(m) = &mut info {
            m.remove("token");
        }
        ok(&json!({ "key": named, "info": info }))
    })
    .await
}

/// `GET /key/list?page=&size=&user_id=&team_id=&key_alias=&return_full_object=`.
pub async fn key_list(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let s = |k: &str| q.get(k).and_then(Value::as_str).map(str::to_owned);
        let page = query_u32(&q, "page", 1, u32::MAX)?;
        let size = query_u32(&q, "size", 10, u32::MAX)?.min(100);
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
        let full = query_bool(&q, "return_full_object", false)?;
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

/// `POST /key/regenerate` (`{"key": …}`) and `POST /key/{key}/regenerate`: a new secret for
/// the key; the body may also change its settings, with `/key/update`'s fields (LiteLLM's
/// `RegenerateKeyRequest` extends `GenerateKeyRequest`). A `key` in the body wins over the
/// path, as in LiteLLM.
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
        let f = Fields { map: &map };
        if f.has("new_key") {
            return Err(bad(
                "gatehouse generates keys itself; custom key values (`new_key`) are not accepted",
                Some("new_key"),
            ));
        }
        if f.has("new_master_key") {
            return Err(bad(
                "the master key comes from the config (general_settings.master_key) and is not \
                 rotated through the API",
                Some("new_master_key"),
            ));
        }
        f.only(KEY_CHANGE_FIELDS)?;
        let old = key_param(&map).or_else(|e| from_path.map(|k| key_ref(&k)).ok_or(e))?;
        let store = &gw.accounts.store;
        let mut rec = load_key(&gw.accounts, &old).await?;
        apply_key_fields(store, &mut rec, &f).await?;
        let raw = new_raw_key()?;
        rec.token_hash = hash_key(&raw);
        rec.key_name = key_name(&raw);
        match store.regenerate_key_with(&old, &rec).await {
            Ok(()) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::NotFound {
                    path: "key not found".into(),
                });
            }
            Err(e) => return Err(store_error(&e)),
        }
        gw.accounts.keys.forget(&old);
        let rec = load_key(&gw.accounts, &rec.token_hash).await?;
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
        "user_alias": u.user_alias,
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
        // The key's fields are checked before anything is written, so that a bad one leaves
        // no user behind.
        let auto_key = f.boolean("auto_create_key")?.unwrap_or(true);
        if auto_key {
            f.duration("duration")?;
            check_alias_free(store, f.string("key_alias")?.flatten().as_deref()).await?;
        }
        let mut u = UserRecord::new(id.clone(), role);
        if let Some(v) = f.string("user_email")? {
            u.user_email = v;
        }
        if let Some(v) = f.string("user_alias")? {
            u.user_alias = v;
        }
        if let Some(v) = f.strings("models")? {
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
        if auto_key {
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
                m.insert("token_id".into(), Value::String(hex(&rec.token_hash)));
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
        "admins": t.admins,
        "members_with_roles": t
            .members
            .iter()
            .map(|m| {
                let role = if t.admins.contains(m) { "admin" } else { "user" };
                json!({"user_id": m, "user_email": Value::Null, "role": role})
            })
            .collect::<Vec<_>>(),
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
        if let Some(v) = f.strings("models")? {
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
        // `members`: user ids (role `user`) or member objects; `members_with_roles`: LiteLLM's
        // `{"user_id", "role": "admin" | "user"}` objects (role `user` when absent).
        let mut members: Vec<(String, bool)> = Vec::new();
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
                        let admin = match m.get("role") {
                            None | Some(Value::Null) => false,
                            Some(Value::String(r)) if r == "admin" => true,
                            Some(Value::String(r)) if r == "user" => false,
                            Some(_) => {
                                return Err(bad(
                                    format!("`{field}` roles must be \"admin\" or \"user\""),
                                    Some(field),
                                ));
                            }
                        };
                        match members.iter_mut().find(|(m, _)| m == id) {
                            Some(existing) => existing.1 |= admin,
                            None => members.push((id.to_owned(), admin)),
                        }
                    }
                }
                Some(_) => return Err(bad(format!("`{field}` must be a list"), Some(field))),
            }
        }
        let t = store.insert_team(&t).await.map_err(|e| store_error(&e))?;
        for (m, admin) in &members {
            if store.user(m).await.map_err(|e| store_error(&e))?.is_none() {
                store
                    .insert_user(&UserRecord::new(m.clone(), "internal_user"))
                    .await
                    .map_err(|e| store_error(&e))?;
            }
            store
                .add_team_member_with_role(&id, m, *admin)
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
        // LiteLLM keeps a membership row only for a member with a per-member budget, which
        // gatehouse does not offer, so (as LiteLLM for such teams) the list is empty.
        ok(&json!({
            "team_id": id,
            "team_info": team_json(&t),
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
            "team_memberships": [],
        }))
    })
    .await
}

// ---------- spend ----------

/// Most raw rows `/spend/logs` returns; when more match, it answers 400 asking for a
/// narrower query instead of silently cutting the list.
const MAX_SPEND_LOG_ROWS: u32 = 10_000;
/// Most (day, key, user, model) groups a summarized `/spend/logs` adds up.
const MAX_SPEND_GROUPS: u32 = 100_000;
/// Longest `start_date`..`end_date` a summarized `/spend/logs` answers (one entry per day).
const MAX_SUMMARY_DAYS: i64 = 3_660;
const DAY_MS: i64 = 86_400_000;

/// One spend log row in LiteLLM's `LiteLLM_SpendLogs` shape: `model` is the deployment's
/// upstream model (without provider prefix) and `model_group` the public name, as LiteLLM
/// records them. A deployment no longer in the config shows its public name as `model`.
fn spend_json(gw: &Gateway, r: &SpendRecord) -> Value {
    let (model, provider) = gw
        .router
        .deployment_model(&r.model, &r.deployment_id)
        .map_or((r.model.as_str(), Value::Null), |(m, p)| (m, json!(p)));
    json!({
        "request_id": r.request_id,
        "api_key": r.token_hash.map(|h| hex(&h)),
        "model": model,
        "model_group": r.model,
        "model_id": r.deployment_id,
        "custom_llm_provider": provider,
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
    Ok((get("start_date")?, get("end_date")?.map(|e| e + DAY_MS)))
}

/// A whole number from 1 to `max` in the query string, `default` when absent.
fn query_u32(q: &Map<String, Value>, k: &str, default: u32, max: u32) -> Result<u32, ApiError> {
    match q.get(k).and_then(Value::as_str) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                let range = if max == u32::MAX {
                    "from 1".to_owned()
                } else {
                    format!("from 1 to {max}")
                };
                bad(format!("`{k}` must be a whole number {range}"), Some(k))
            }),
    }
}

/// A query-string boolean as FastAPI reads one (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
fn query_bool(q: &Map<String, Value>, k: &str, default: bool) -> Result<bool, ApiError> {
    match q.get(k).and_then(Value::as_str) {
        None => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(bad(format!("`{k}` must be true or false"), Some(k))),
        },
    }
}

/// The filters shared by `/spend/logs` and `/spend/logs/ui`. `api_key` is a raw key or its
/// token; `team_id` is a gatehouse addition on `/spend/logs`.
fn spend_filters(q: &Map<String, Value>) -> SpendQuery {
    let s = |k: &str| {
        q.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    SpendQuery {
        token_hash: s("api_key").map(|k| key_ref(&k)),
        user_id: s("user_id"),
        team_id: s("team_id"),
        request_id: s("request_id"),
        ..SpendQuery::default()
    }
}

fn too_many(what: &str) -> ApiError {
    bad(
        format!(
            "more than {what} match; narrow start_date/end_date or filter by api_key, user_id, \
             team_id or request_id (or page through /spend/logs/ui)"
        ),
        None,
    )
}

/// LiteLLM's summarized `/spend/logs`: one entry per UTC day that has spend, in date order,
/// `{"startTime": "YYYY-MM-DD", "spend", "users": {user: spend}, "models": {model: spend},
/// <token>: spend …}`, followed by zero entries for the days after the last one up to
/// `end_date`; `[]` when nothing matches.
fn summarize_days(gw: &Gateway, groups: &[SpendDay], end_day: i64) -> Value {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Day {
        total: i64,
        users: BTreeMap<String, i64>,
        models: BTreeMap<String, i64>,
        keys: BTreeMap<String, i64>,
    }
    fn add(map: &mut BTreeMap<String, i64>, k: String, v: i64) {
        let e = map.entry(k).or_insert(0);
        *e = e.saturating_add(v);
    }
    let mut days: BTreeMap<i64, Day> = BTreeMap::new();
    for g in groups {
        let d = days.entry(g.day).or_default();
        d.total = d.total.saturating_add(g.spend);
        add(&mut d.users, g.user_id.clone().unwrap_or_default(), g.spend);
        let model = gw
            .router
            .deployment_model(&g.model, &g.deployment_id)
            .map_or(g.model.as_str(), |(m, _)| m);
        add(&mut d.models, model.to_owned(), g.spend);
        if let Some(h) = g.token_hash {
            add(&mut d.keys, hex(&h), g.spend);
        }
    }
    let to_usd = |m: BTreeMap<String, i64>| -> Map<String, Value> {
        m.into_iter().map(|(k, v)| (k, usd(v))).collect()
    };
    let last = days.keys().next_back().copied();
    let mut out: Vec<Value> = Vec::with_capacity(days.len());
    for (day, d) in days {
        let mut m = to_usd(d.keys);
        m.insert("users".into(), Value::Object(to_usd(d.users)));
        m.insert("models".into(), Value::Object(to_usd(d.models)));
        m.insert("spend".into(), usd(d.total));
        m.insert("startTime".into(), Value::String(day_string(day)));
        out.push(Value::Object(m));
    }
    if let Some(last) = last {
        for day in last.saturating_add(1)..=end_day {
            out.push(
                json!({"startTime": day_string(day), "spend": 0.0, "users": {}, "models": {}}),
            );
        }
    }
    Value::Array(out)
}

fn day_string(day: i64) -> String {
    iso8601(day.saturating_mul(DAY_MS))
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

/// `GET /spend/logs?api_key=&user_id=&team_id=&request_id=&start_date=&end_date=&summarize=`.
///
/// As LiteLLM's: with both `start_date` and `end_date` and `summarize` (default true), one
/// aggregated entry per day (see [`summarize_days`]); otherwise the matching rows, newest
/// first. Never cut silently: over [`MAX_SPEND_LOG_ROWS`] rows (or too many groups, or a
/// summary over [`MAX_SUMMARY_DAYS`] days) the answer is 400 asking for a narrower query.
pub async fn spend_logs(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        let (start_ms, end_ms) = date_range(&q)?;
        let summarize = query_bool(&q, "summarize", true)?;
        let mut filter = SpendQuery {
            start_ms,
            end_ms,
            ..spend_filters(&q)
        };
        let store = &gw.accounts.store;
        if let (Some(start), Some(end), true) = (start_ms, end_ms, summarize) {
            if end <= start {
                return Err(bad("`end_date` is before `start_date`", Some("end_date")));
            }
            if (end - start) / DAY_MS > MAX_SUMMARY_DAYS {
                return Err(bad(
                    format!(
                        "a summary covers at most {MAX_SUMMARY_DAYS} days; narrow start_date/end_date \
                         or pass summarize=false"
                    ),
                    Some("end_date"),
                ));
            }
            filter.limit = Some(MAX_SPEND_GROUPS + 1);
            let groups = store
                .spend_by_day(&filter)
                .await
                .map_err(|e| store_error(&e))?;
            if groups.len() > MAX_SPEND_GROUPS as usize {
                return Err(too_many(&format!(
                    "{MAX_SPEND_GROUPS} (day, key, user, model) groups"
                )));
            }
            return ok(&summarize_days(&gw, &groups, end / DAY_MS - 1));
        }
        filter.limit = Some(MAX_SPEND_LOG_ROWS + 1);
        let rows = store
            .spend_logs(&filter)
            .await
            .map_err(|e| store_error(&e))?;
        if rows.len() > MAX_SPEND_LOG_ROWS as usize {
            return Err(too_many(&format!("{MAX_SPEND_LOG_ROWS} spend logs")));
        }
        ok(&Value::Array(
            rows.iter().map(|r| spend_json(&gw, r)).collect(),
        ))
    })
    .await
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`), UTC, → unix ms.
fn parse_datetime(s: &str) -> Option<i64> {
    let day = parse_date(s)?;
    let time = s.get(11..19)?;
    if !matches!(s.as_bytes().get(10), Some(b' ' | b'T')) || s.len() > 19 {
        return None;
    }
    // Three fields of two digits each (no sign), each in its range.
    let mut it = time.split(':');
    let mut field = |max: u32| -> Option<u32> {
        let f = it.next()?;
        if f.len() != 2 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        f.parse::<u32>().ok().filter(|v| *v <= max)
    };
    let (h, m, sec) = (field(23)?, field(59)?, field(59)?);
    Some(day + i64::from((h * 60 + m) * 60 + sec) * 1000)
}

/// LiteLLM query filters of `/spend/logs/ui` that gatehouse does not implement; refused by
/// name when given (a filter silently ignored would return wrong rows).
const UNSUPPORTED_SPEND_FILTERS: &[&str] = &[
    "min_spend",
    "max_spend",
    "status_filter",
    "model",
    "model_id",
    "key_alias",
    "end_user",
    "error_code",
    "error_message",
    "session_id",
];

/// `GET /spend/logs/ui?start_date=&end_date=&page=&page_size=&api_key=&user_id=&team_id=&request_id=`:
/// LiteLLM's paged spend logs, `{"data": [...], "total", "page", "page_size", "total_pages"}`,
/// newest first. `start_date` and `end_date` (`YYYY-MM-DD HH:MM:SS`, UTC, both inclusive)
/// are required; `page` from 1, `page_size` 1..=100 (default 50).
pub async fn spend_logs_ui(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    admin(gw, req, |gw, req| async move {
        let q = query(&req);
        for k in UNSUPPORTED_SPEND_FILTERS {
            if q.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
            {
                return Err(bad(
                    format!("gatehouse does not support the `{k}` filter"),
                    Some(k),
                ));
            }
        }
        let time = |k: &str| -> Result<i64, ApiError> {
            let v = q
                .get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad("Start date and end date are required", Some(k)))?;
            parse_datetime(v)
                .ok_or_else(|| bad(format!("`{k}` must be YYYY-MM-DD HH:MM:SS"), Some(k)))
        };
        let (start, end) = (time("start_date")?, time("end_date")?);
        let page = query_u32(&q, "page", 1, u32::MAX)?;
        let page_size = query_u32(&q, "page_size", 50, 100)?;
        let filter = SpendQuery {
            start_ms: Some(start),
            end_ms: Some(end.saturating_add(1000)),
            ..spend_filters(&q)
        };
        let store = &gw.accounts.store;
        let total = store
            .spend_totals(&filter)
            .await
            .map_err(|e| store_error(&e))?
            .requests;
        let offset = u64::from(page - 1) * u64::from(page_size);
        let rows = store
            .spend_logs_page(&filter, offset, page_size)
            .await
            .map_err(|e| store_error(&e))?;
        let total = u64::try_from(total).unwrap_or(0);
        ok(&json!({
            "data": rows.iter().map(|r| spend_json(&gw, r)).collect::<Vec<_>>(),
            "total": total,
            "page": page,
            "page_size": page_size,
            "total_pages": total.div_ceil(u64::from(page_size)),
        }))
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
    fn logged_paths_never_hold_a_raw_key() {
        let raw = "sk-abcdefghijklmnopqrstuvwxyz012345";
        let token = hex(&hash_key(raw));
        let logged = loggable_path(&format!("/key/{raw}/regenerate"));
        assert_eq!(logged, format!("/key/{{token:{}}}/regenerate", &token[..8]));
        // Percent-encoded, or named by its token: the same id.
        assert_eq!(
            loggable_path(&format!("/key/{}/regenerate", raw.replace('-', "%2D"))),
            logged
        );
        assert_eq!(loggable_path(&format!("/key/{token}/regenerate")), logged);
        assert_eq!(loggable_path("/key/regenerate"), "/key/regenerate");
        assert_eq!(loggable_path("/key//regenerate"), "/key//regenerate");
        assert_eq!(loggable_path("/spend/logs"), "/spend/logs");
    }

    /// Each of HH, MM and SS is two digits in its range: a sign used to slip through
    /// (`-1:00:00` was an hour before midnight, on the day before).
    #[test]
    fn times_with_signs_or_odd_fields_are_refused() {
        for bad in [
            "2023-11-14 -1:00:00",
            "2023-11-14 00:-1:00",
            "2023-11-14 00:00:-1",
            "2023-11-14 +1:00:00",
            "2023-11-14 1:00:000",
            "2023-11-14 00:60:00",
            "2023-11-14 00:00:60",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(
            parse_datetime("2023-11-14 23:59:59"),
            Some(1_699_920_000_000 + 86_399_000)
        );
        for bad in [
            "2023-+1-14",
            "2023-1-1-1x",
            "+023-11-14",
            "2023-11-1 ",
            "2023/11/14",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2023-11-14"), Some(1_699_920_000_000));
    }

    #[test]
    fn spend_query_values() {
        assert_eq!(
            parse_datetime("2023-11-14 22:13:20"),
            Some(1_699_999_999_000 + 1_000)
        );
        assert_eq!(
            parse_datetime("2023-11-14T00:00:00"),
            Some(1_699_920_000_000)
        );
        for bad in [
            "2023-11-14",
            "2023-11-14 24:00:00",
            "2023-11-14 10:00:00Z",
            "2023-11-14_10:00:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        let q = |v: &str| {
            let mut m = Map::new();
            m.insert("summarize".into(), Value::String(v.into()));
            query_bool(&m, "summarize", true)
        };
        assert_eq!(q("False").ok(), Some(false));
        assert_eq!(q("1").ok(), Some(true));
        assert!(q("maybe").is_err());
        assert_eq!(query_bool(&Map::new(), "summarize", true).ok(), Some(true));
        assert_eq!(day_string(19_675), "2023-11-14");
    }

    #[test]
    fn query_numbers_are_whole_and_in_range() {
        let q = |v: &str| {
            let mut m = Map::new();
            m.insert("page_size".into(), Value::String(v.into()));
            m
        };
        assert_eq!(query_u32(&Map::new(), "page_size", 50, 100).ok(), Some(50));
        assert_eq!(query_u32(&q("100"), "page_size", 50, 100).ok(), Some(100));
        for bad in ["0", "101", "-1", "1.5", ""] {
            let e = query_u32(&q(bad), "page_size", 50, 100).unwrap_err();
            assert!(e.to_string().contains("from 1 to 100"), "{bad}: {e}");
        }
        let e = query_u32(&q("0"), "page_size", 1, u32::MAX).unwrap_err();
        assert!(e.to_string().ends_with("from 1"), "{e}");
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
