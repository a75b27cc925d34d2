//! End-to-end tests of the Gemini endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use gatehouse_mock::MockServer;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const KEY: &[(&str, &str)] = &[("x-goog-api-key", "AIza-test")];

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn url(server: &MockServer, model_method: &str) -> String {
    format!("http://{}/v1beta/models/{model_method}", server.addr())
}

async fn post(
    c: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> http::Response<Incoming> {
    let mut req = Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    c.request(req).await.unwrap()
}

async fn json_of(resp: http::Response<Incoming>) -> Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn text_of(resp: http::Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Parses Google's SSE framing: every frame is `data: {json}\r\n\r\n`.
fn frames(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n"), "{body:?}");
    body.split("\r\n\r\n")
        .filter(|f| !f.is_empty())
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect()
}

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

#[tokio::test]
async fn plain_generate() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let body = json!({"systemInstruction": {"parts": [{"text": "You are a cat."}]},
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]},
                     {"role": "model", "parts": [{"text": "Meow."}]},
                     {"role": "user", "parts": [{"text": "Write a"}, {"text": " story"}]}]});
    let resp = post(
        &c,
        &url(&server, "gemini-2.5-flash:generateContent"),
        KEY,
        &body,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    assert_eq!(
        v["candidates"],
        json!([{"content": {"parts": [{"text": "Hello from mock: Write a story"}], "role": "model"},
                "finishReason": "STOP", "index": 0}])
    );
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 9, "candidatesTokenCount": 6, "totalTokenCount": 15})
    );
    assert_eq!(v["modelVersion"], "gemini-2.5-flash");
    assert!(v["responseId"].as_str().unwrap().starts_with("mock-"));

    let reqs = server.requests();
    assert_eq!(
        reqs[0].path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(reqs[0].headers["x-goog-api-key"], "AIza-test");

    // Thoughts and content override.
    let mut body = user("x");
    body["generationConfig"] =
        json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}});
    body["mock"] = json!({"content": "Fixed."});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"],
        json!([{"text": "Mock thinking.", "thought": true}, {"text": "Fixed."}])
    );
    assert_eq!(v["usageMetadata"]["thoughtsTokenCount"], 2);

    // Safety block.
    let mut body = user("x");
    body["mock"] = json!({"safety_block": true});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert_eq!(
        v["candidates"],
        json!([{"finishReason": "SAFETY", "index": 0, "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]}])
    );
}

#[tokio::test]
async fn tools_and_function_response() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let tools = json!([{"functionDeclarations": [
        {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["location", "unit"]}},
        {"name": "get_time"}]}]);
    let mut body = user("Weather in Boston?");
    body["tools"] = tools.clone();
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts[0]["functionCall"],
        json!({"name": "get_weather", "args": {"location": "mock", "unit": "c"}})
    );
    assert!(parts[0]["thoughtSignature"].is_string(), "{parts}");
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");

    body["mock"] = json!({"parallel": true});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock: Weather in Boston?"
    );

    let body = json!({"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": "Weather in Boston?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "15 degrees"}}}]}]});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"],
        json!([{"text": "Hello from mock: tool said 15 degrees"}])
    );
    let mut body = body;
    body["contents"][2]["parts"][0]["functionResponse"]["response"] = json!({"temp": 15});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock: tool said {\"temp\":15}"
    );
}

#[tokio::test]
async fn stream_framing() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let mut body = user("one two three four");
    body["mock"] = json!({"chunks": 4});
    let resp = post(
        &c,
        &url(&server, "m:streamGenerateContent?alt=sse"),
        KEY,
        &body,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let f = frames(&text_of(resp).await);
    assert_eq!(f.len(), 4);
    let text: String = f
        .iter()
        .map(|f| {
            f["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "Hello from mock: one two three four");
    for frame in &f[..3] {
        assert!(frame["candidates"][0].get("finishReason").is_none());
        assert!(frame.get("usageMetadata").is_none());
    }
    assert_eq!(f[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(f[3]["usageMetadata"]["promptTokenCount"], 4);

    // Tool call: one frame carrying the call and the finish.
    let mut body = user("x");
    body["tools"] = json!([{"functionDeclarations": [{"name": "f"}]}]);
    let resp = post(
        &c,
        &url(&server, "m:streamGenerateContent?alt=sse"),
        KEY,
        &body,
    )
    .await;
    let f = frames(&text_of(resp).await);
    assert_eq!(f.len(), 1);
    let parts = f[0]["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["functionCall"], json!({"name": "f", "args": {}}));
    assert!(parts[0]["thoughtSignature"].is_string());

    // Error frame after the first chunk.
    let mut body = user("a b c");
    body["mock"] = json!({"stream_error": true});
    let resp = post(
        &c,
        &url(&server, "m:streamGenerateContent?alt=sse"),
        KEY,
        &body,
    )
    .await;
    let f = frames(&text_of(resp).await);
    assert_eq!(f.len(), 2);
    assert_eq!(f[1]["error"]["status"], "UNAVAILABLE");

    // Without alt=sse.
    let resp = post(
        &c,
        &url(&server, "m:streamGenerateContent"),
        KEY,
        &user("x"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn key_in_url_and_auth() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let resp = post(
        &c,
        &url(&server, "m:generateContent?key=AIza-test"),
        KEY,
        &user("x"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v = json_of(resp).await;
    assert_eq!(v["error"]["code"], 400);
    assert_eq!(v["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API key must be sent in a header")
    );
    let resp = post(
        &c,
        &url(&server, "m:streamGenerateContent?alt=sse&key=k"),
        KEY,
        &user("x"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    for headers in [&[][..], &[("x-goog-api-key", " ")][..]] {
        let resp = post(&c, &url(&server, "m:generateContent"), headers, &user("x")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let v = json_of(resp).await;
        assert_eq!(v["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(v["error"]["code"], 401);
    }

    let resp = post(&c, &url(&server, "m:countTokens"), KEY, &user("x")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(resp).await["error"]["status"], "NOT_FOUND");

    let resp = post(
        &c,
        &url(&server, "m:generateContent"),
        KEY,
        &json!({"contents": []}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(resp).await["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn scripted_errors_use_google_shape() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    for (status, name) in [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ] {
        let mut body = user("x");
        body["mock"] = json!({"status": status, "retry_after": "2"});
        let resp = post(&c, &url(&server, "m:generateContent"), KEY, &body).await;
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(resp.headers()["retry-after"], "2");
        assert_eq!(
            json_of(resp).await,
            json!({"error": {"code": status, "message": format!("mock error {status}"), "status": name}})
        );
    }
    // fail_times: first fails, second succeeds.
    let mut body = user("x");
    body["mock"] = json!({"status": 429, "fail_times": 1, "key": "gemini-ft"});
    let resp = post(&c, &url(&server, "m:generateContent"), KEY, &body).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let resp = post(&c, &url(&server, "m:generateContent"), KEY, &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn batch_embeddings() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let body = json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is life?"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "What is life?"}]}, "outputDimensionality": 3}]});
    let resp = post(
        &c,
        &url(&server, "gemini-embedding-001:batchEmbedContents"),
        KEY,
        &body,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_of(resp).await;
    let e = v["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["values"].as_array().unwrap().len(), 8);
    assert_eq!(e[1]["values"].as_array().unwrap().len(), 3);

    // Same vectors as the OpenAI path for the same text.
    let openai = json_of(
        post(
            &c,
            &format!("{}/embeddings", server.base_url()),
            &[],
            &json!({"model": "e", "input": "What is life?"}),
        )
        .await,
    )
    .await;
    assert_eq!(openai["data"][0]["embedding"], e[0]["values"]);

    // Model mismatch.
    let resp = post(&c, &url(&server, "other:batchEmbedContents"), KEY, &body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(resp).await["error"]["status"], "INVALID_ARGUMENT");
}

/// Gemini 3: the first functionCall part of each reply is signed; in the current turn, a
/// model content's first call must come back with its signature.
#[tokio::test]
async fn thought_signatures_are_issued_and_required_by_gemini_3() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let tools = json!([{"functionDeclarations": [
        {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"location": {"type": "string"}}, "required": ["location"]}},
        {"name": "get_time"}]}]);
    let mut body = user("Weather and time?");
    body["tools"] = tools.clone();
    body["mock"] = json!({"parallel": true});
    let v = json_of(
        post(
            &c,
            &url(&server, "gemini-3-pro:generateContent"),
            KEY,
            &body,
        )
        .await,
    )
    .await;
    let parts = v["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parts.len(), 2);
    let sig = parts[0]["thoughtSignature"].as_str().unwrap().to_owned();
    assert!(
        sig.contains('+') || sig.contains('/'),
        "exercises base64's own symbols: {sig}"
    );
    assert!(sig.ends_with('='), "and its padding: {sig}");
    assert!(
        parts[1].get("thoughtSignature").is_none(),
        "parallel: only the first is signed"
    );

    let turn = |model_parts: Value| {
        json!({"tools": tools, "contents": [
            {"role": "user", "parts": [{"text": "Weather and time?"}]},
            {"role": "model", "parts": model_parts},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]}]})
    };
    let ok = post(
        &c,
        &url(&server, "gemini-3-pro:generateContent"),
        KEY,
        &turn(json!(parts)),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        json_of(ok).await["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from mock: tool said noon"
    );

    let mut unsigned = parts.clone();
    unsigned[0]
        .as_object_mut()
        .unwrap()
        .remove("thoughtSignature");
    let resp = post(
        &c,
        &url(&server, "gemini-3-pro:generateContent"),
        KEY,
        &turn(json!(unsigned)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e = json_of(resp).await;
    assert_eq!(e["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        e["error"]["message"],
        "Function call `get_weather` in the 2. content block is missing a `thought_signature`."
    );

    let mut forged = parts.clone();
    forged[0]["thoughtSignature"] = json!("AAAA");
    let resp = post(
        &c,
        &url(&server, "gemini-3-pro:generateContent"),
        KEY,
        &turn(json!(forged)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(resp).await["error"]["message"],
        "Corrupted thought signature."
    );

    // Earlier turns are not checked; nor are models before Gemini 3.
    let mut later = turn(json!(unsigned));
    later["contents"].as_array_mut().unwrap().extend([
        json!({"role": "model", "parts": [{"text": "Sunny at noon."}]}),
        json!({"role": "user", "parts": [{"text": "Thanks"}]}),
    ]);
    let resp = post(
        &c,
        &url(&server, "gemini-3-pro:generateContent"),
        KEY,
        &later,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = post(
        &c,
        &url(&server, "gemini-2.5-flash:generateContent"),
        KEY,
        &turn(json!(unsigned)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn blocked_prompt_has_no_candidates() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let mut body = user("something bad");
    body["mock"] = json!({"prompt_block": "SAFETY"});
    let v = json_of(post(&c, &url(&server, "m:generateContent"), KEY, &body).await).await;
    assert!(v.get("candidates").is_none(), "{v}");
    assert_eq!(v["promptFeedback"]["blockReason"], "SAFETY");
    assert_eq!(v["promptFeedback"]["safetyRatings"][0]["blocked"], true);
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 2);
    let resp = post(
        &c,
        &url(&server, "m:streamGenerateContent?alt=sse"),
        KEY,
        &body,
    )
    .await;
    let f = frames(&text_of(resp).await);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["promptFeedback"]["blockReason"], "SAFETY");
    assert!(f[0].get("candidates").is_none());
}

#[tokio::test]
async fn batch_embeddings_refuse_unknown_fields() {
    let server = MockServer::start().await.unwrap();
    let c = client();
    let u = url(&server, "e:batchEmbedContents");
    let one = json!({"model": "models/e", "content": {"parts": [{"text": "a"}]},
        "taskType": "RETRIEVAL_QUERY", "title": "t", "outputDimensionality": 4});
    let resp = post(&c, &u, KEY, &json!({"requests": [one]})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    for (body, unknown) in [
        (json!({"requests": [one], "user": "u"}), "user"),
        (
            json!({"requests": [{"model": "models/e", "content": {"parts": [{"text": "a"}]}, "dimensions": 4}]}),
            "dimensions",
        ),
    ] {
        let resp = post(&c, &u, KEY, &body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let m = json_of(resp).await["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(m.contains(&format!("Unknown name \"{unknown}\"")), "{m}");
    }
    let mut bad = one.clone();
    bad["taskType"] = json!("SUMMARIZE");
    let resp = post(&c, &u, KEY, &json!({"requests": [bad]})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
