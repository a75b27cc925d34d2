use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_KEY" => Some("sk-from-env".into()),
        "RPM" => Some("60".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<Loaded, Vec<Problem>> {
    load_str(text, &env)
}

fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected problems"),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn reads_a_litellm_config() {
    let loaded = load(
        r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_KEY
      rpm: os.environ/RPM
      timeout: 12.5
      weight: 3
    model_info:
      id: my-id
  - model_name: gpt-4o
    litellm_params:
      model: azure/prod-gpt4o
      api_base: https://res.openai.azure.com
      api_key: azure-key
      api_version: "2024-06-01"
  - model_name: llama
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3-8B
      api_base: http://127.0.0.1:8000/v1
router_settings:
  num_retries: 4
  routing_strategy: simple-shuffle
litellm_settings:
  request_timeout: 30
  success_callback: ["langfuse"]
general_settings:
  master_key: sk-master
  max_request_size_mb: 2
"#,
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.deployments.len(), 3);
    let d = &c.deployments[0];
    assert_eq!(d.id, "my-id");
    assert_eq!(d.upstream_model, "gpt-4o");
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "sk-from-env");
    assert_eq!(d.rpm, Some(60));
    assert_eq!(d.timeout, Duration::from_secs_f64(12.5));
    assert_eq!(d.stream_timeout, d.timeout);
    assert_eq!(d.max_retries, 4);
    assert_eq!(d.weight, 3.0);
    assert_eq!(
        d.endpoints.chat_completions,
        "https://api.openai.com/v1/chat/completions"
    );
    assert_eq!(c.deployments[1].timeout, Duration::from_secs(30));
    assert_eq!(c.deployments[2].upstream_model, "meta-llama/Llama-3-8B");
    assert_eq!(c.deployments[0].id.len(), 5);
    assert_eq!(c.deployments[1].id.len(), 32);
    assert_eq!(c.master_key.as_ref().unwrap().expose(), "sk-master");
    assert_eq!(c.max_request_size_bytes, 2 * 1024 * 1024);
    let ignored: Vec<String> = loaded.ignored.iter().map(ToString::to_string).collect();
    assert_eq!(
        ignored,
        ["ignored: litellm_settings.success_callback (gatehouse never loads plug-in code)"]
    );
}

#[test]
fn reports_every_problem_by_path() {
    let p = problems(
        r#"
model_list:
  - model_name: a
    litellm_params:
      model: openai/x
      rpm: lots
      colour: blue
  - litellm_params:
      model: nonsense/x
  - model_name: c
    litellm_params:
      model: hosted_vllm/x
general_settings:
  master_key: os.environ/NOT_SET
  max_request_size_mb: -1
frobnicate: true
gatehouse:
  client_header_timeout: 0
  unknown_thing: 1
"#,
    );
    let expected = [
        "frobnicate: unknown key",
        "general_settings.master_key: environment variable NOT_SET is not set",
        "general_settings.max_request_size_mb: expected a number greater than 0, found -1",
        "gatehouse.client_header_timeout: expected a number greater than 0, found 0",
        "gatehouse.unknown_thing: unknown key (gatehouse's own section is parsed strictly)",
        "model_list[0].litellm_params.colour: unknown key",
        "model_list[0].litellm_params.rpm: expected a number, found \"lots\"",
        "model_list[1].model_name: missing (the name clients ask for)",
        "model_list[1].litellm_params.model: unknown provider prefix in \"nonsense/x\" (expected e.g. openai/, azure/, anthropic/, hosted_vllm/, ollama/)",
        "model_list[2].litellm_params.api_base: required for hosted_vllm/ deployments",
    ];
    for e in expected {
        assert!(p.iter().any(|x| x == e), "missing {e:?} in {p:#?}");
    }
    assert_eq!(p.len(), expected.len(), "{p:#?}");
}

#[test]
fn not_yet_served_providers_are_skipped_with_a_warning() {
    let loaded = load(
        r#"
model_list:
  - model_name: claude
    litellm_params: { model: sagemaker/some-endpoint, api_key: x }
  - model_name: gpt
    litellm_params: { model: gpt-4o-mini }
"#,
    )
    .unwrap();
    assert_eq!(loaded.config.deployments.len(), 1);
    assert_eq!(loaded.ignored[0].path, "model_list[0]");
}

#[test]
fn environment_variables_section_feeds_os_environ() {
    let loaded = load(
        r#"
environment_variables:
  MY_BASE: http://127.0.0.1:9999/v1
  OPENAI_API_KEY: sk-overlay
model_list:
  - model_name: m
    litellm_params: { model: openai/m, api_base: os.environ/MY_BASE }
"#,
    )
    .unwrap();
    let d = &loaded.config.deployments[0];
    assert_eq!(
        d.endpoints.chat_completions,
        "http://127.0.0.1:9999/v1/chat/completions"
    );
    assert_eq!(d.api_key.as_ref().unwrap().expose(), "sk-overlay");
}

#[test]
fn secrets_in_urls_are_refused() {
    let p = problems(
        r#"
model_list:
  - model_name: m
    litellm_params: { model: openai/m, api_base: "https://u:sk-secret@host/v1" }
"#,
    );
    assert_eq!(p.len(), 1);
    assert!(!p[0].contains("sk-secret"), "{p:?}");
}

#[test]
fn bad_yaml_and_wrong_shapes() {
    assert!(problems("model_list: [")[0].starts_with("not valid YAML"));
    assert_eq!(
        problems("- a\n- b\n"),
        ["expected a mapping at the top level, found a list"]
    );
    assert_eq!(
        problems("model_list: 3\n"),
        ["model_list: expected a list, found a number"]
    );
}

#[test]
fn empty_config_is_valid() {
    let loaded = load("").unwrap();
    assert!(loaded.config.deployments.is_empty());
    assert!(loaded.config.master_key.is_none());
}

#[test]
fn debug_output_never_shows_secrets() {
    let loaded = load(
        r#"
model_list:
  - model_name: m
    litellm_params: { model: openai/m, api_key: sk-provider-secret }
general_settings: { master_key: sk-master-secret }
"#,
    )
    .unwrap();
    let dbg = format!("{:?}", loaded.config);
    assert!(!dbg.contains("sk-provider-secret") && !dbg.contains("sk-master-secret"));
}

#[test]
fn bedrock_and_gemini_deployments() {
    let loaded = load(
        r#"
model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_region_name: eu-west-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: very-secret
  - model_name: gem
    litellm_params: { model: gemini/gemini-2.5-flash, api_key: g-key }
"#,
    )
    .unwrap();
    let d = &loaded.config.deployments[0];
    assert_eq!(
        d.endpoints.chat_completions,
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    let aws = d.aws.as_ref().unwrap();
    assert_eq!(aws.region, "eu-west-1");
    assert_eq!(aws.secret_access_key.expose(), "very-secret");
    assert!(!format!("{d:?}").contains("very-secret"));
    assert!(loaded.config.deployments[1].aws.is_none());

    let p = problems(
        "model_list:\n  - model_name: b\n    litellm_params: { model: bedrock/x, aws_access_key_id: a, aws_secret_access_key: b }\n",
    );
    assert_eq!(
        p,
        [
            "model_list[0].litellm_params.aws_region_name: required for bedrock/ deployments (or AWS_REGION)"
        ]
    );
}

#[test]
fn bedrock_route_prefixes_and_arns() {
    let aws =
        "aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: s";
    let loaded = load(&format!(
        r#"
model_list:
  - model_name: converse
    litellm_params: {{ model: bedrock/converse/us.anthropic.claude-sonnet-4-20250514-v1:0, {aws} }}
  - model_name: invoke
    litellm_params: {{ model: bedrock/invoke/anthropic.claude-3-haiku-20240307-v1:0, {aws} }}
  - model_name: profile
    litellm_params: {{ model: "bedrock/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a0a0a0a0a0a0", {aws} }}
  - model_name: imported
    litellm_params: {{ model: "bedrock/llama/arn:aws:bedrock:us-east-1:123456789012:imported-model/r4c4kewx2s0n", {aws} }}
"#
    ))
    .unwrap();
    let ds = &loaded.config.deployments;
    assert_eq!(ds.len(), 3, "llama/ is skipped");
    // converse/ is LiteLLM's route, not part of the model id.
    assert_eq!(
        ds[0].upstream_model,
        "us.anthropic.claude-sonnet-4-20250514-v1:0"
    );
    assert_eq!(
        ds[0].endpoints.chat_completions,
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
    );
    assert_eq!(
        ds[1].upstream_model,
        "anthropic.claude-3-haiku-20240307-v1:0"
    );
    assert_eq!(
        ds[2].endpoints.chat_completions,
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fa0a0a0a0a0a0/converse"
    );
    let ignored: Vec<String> = loaded.ignored.iter().map(ToString::to_string).collect();
    assert!(
        ignored.iter().any(
            |i| i.starts_with("ignored: model_list[1].litellm_params.model (")
                && i.contains("invoke/")
        ),
        "{ignored:?}"
    );
    assert!(
        ignored
            .iter()
            .any(|i| i.starts_with("ignored: model_list[3] (") && i.contains("bedrock/llama/")),
        "{ignored:?}"
    );

    let p = problems(&format!(
        r#"
model_list:
  - model_name: a
    litellm_params: {{ model: bedrock/us-west-2/anthropic.claude-v2, {aws} }}
  - model_name: b
    litellm_params: {{ model: "bedrock/arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0", {aws} }}
  - model_name: c
    litellm_params: {{ model: bedrock/converse/, {aws} }}
"#
    ));
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("model_list[0].litellm_params.model: ")
            && p[0].contains("not a Bedrock model id"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("model_list[1].litellm_params.model: ") && p[1].contains("eu-west-1"),
        "{p:?}"
    );
    assert!(
        p[2].starts_with("model_list[2].litellm_params.model: "),
        "{p:?}"
    );
}

const TEST_SA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../gatehouse-mock/testdata/vertex-test-sa.json"
);

#[test]
fn vertex_deployments_from_a_key_file_or_inline_json() {
    let inline = std::fs::read_to_string(TEST_SA_PATH).unwrap();
    let yaml = format!(
        r#"
model_list:
  - model_name: v1
    litellm_params:
      model: vertex_ai/gemini-2.5-pro
      vertex_project: my-proj
      vertex_credentials: {TEST_SA_PATH}
  - model_name: v2
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_location: global
      vertex_credentials: os.environ/SA_JSON
  - model_name: v3
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      api_base: http://127.0.0.1:9
  - model_name: claude-vertex
    litellm_params:
      model: vertex_ai/claude-sonnet-4@20250514
"#
    );
    let env = |name: &str| match name {
        "SA_JSON" => Some(inline.clone()),
        "GOOGLE_APPLICATION_CREDENTIALS" => Some(TEST_SA_PATH.to_owned()),
        "VERTEXAI_LOCATION" => Some("europe-west4".to_owned()),
        _ => None,
    };
    let loaded = load_str(&yaml, &env).unwrap();
    let ds = &loaded.config.deployments;
    assert_eq!(ds.len(), 4, "Claude on Vertex is served too");
    assert_eq!(
        ds[0].endpoints.chat_completions,
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    // vertex_location wins over VERTEXAI_LOCATION; the project comes from the key file.
    assert_eq!(
        ds[1].endpoints.chat_completions,
        "https://aiplatform.googleapis.com/v1/projects/gatehouse-test-project/locations/global/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        ds[2].endpoints.chat_completions,
        "http://127.0.0.1:9/v1/projects/gatehouse-test-project/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    let v = ds[0].vertex.as_ref().unwrap();
    assert_eq!(
        v.account.client_email,
        "gatehouse-test@gatehouse-test-project.iam.gserviceaccount.com"
    );
    let dbg = format!("{:?}", loaded.config);
    assert!(
        !dbg.contains("PRIVATE KEY") && !dbg.contains("MII"),
        "{dbg}"
    );
    assert!(loaded.ignored.is_empty(), "{:?}", loaded.ignored);
    // Claude: Anthropic's wire format at Anthropic's publisher endpoints, same OAuth flow.
    let claude = &ds[3];
    assert_eq!(claude.provider.wire, WireFormat::Anthropic);
    assert_eq!(claude.provider.auth, AuthStyle::GoogleOAuth);
    assert_eq!(claude.provider.prefix, "vertex_ai");
    assert_eq!(claude.upstream_model, "claude-sonnet-4@20250514");
    assert!(claude.vertex.is_some());
    assert_eq!(
        claude.endpoints.chat_completions,
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/gatehouse-test-project/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
    );
    assert_eq!(
        claude.endpoints.chat_stream.as_ref().unwrap(),
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/gatehouse-test-project/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
    );
    assert_eq!(
        claude.endpoints.count_tokens.as_ref().unwrap(),
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/gatehouse-test-project/locations/europe-west4/publishers/anthropic/models/count-tokens:rawPredict"
    );
    assert_eq!(ds[0].provider.wire, WireFormat::Gemini);
}

#[test]
fn vertex_problems_by_path() {
    let p = problems(
        r#"
model_list:
  - model_name: a
    litellm_params: { model: vertex_ai/gemini-2.5-pro, vertex_project: p }
  - model_name: b
    litellm_params: { model: vertex_ai/gemini-2.5-pro, vertex_credentials: /nonexistent/sa.json }
  - model_name: c
    litellm_params: { model: vertex_ai/gemini-2.5-pro, vertex_credentials: '{"type": "authorized_user"}' }
"#,
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("model_list[0].litellm_params.vertex_credentials: required"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("model_list[1].litellm_params.vertex_credentials: could not read"),
        "{p:?}"
    );
    assert!(
        p[2].starts_with("model_list[2].litellm_params.vertex_credentials: credentials of type"),
        "{p:?}"
    );
    let p = problems(&format!(
        "model_list:\n  - model_name: a\n    litellm_params: {{ model: vertex_ai/gemini-2.5-pro, vertex_credentials: {TEST_SA_PATH}, vertex_project: 'a/b', vertex_location: 'x y' }}\n"
    ));
    assert_eq!(
        p,
        [
            "model_list[0].litellm_params.vertex_project: \"a/b\" may only hold letters, digits, '-', '_' and '.'",
            "model_list[0].litellm_params.vertex_location: \"x y\" may only hold letters, digits, '-', '_' and '.'",
        ]
    );
}

#[test]
fn reads_database_and_redis_settings() {
    let loaded = load(
        r#"
general_settings:
  database_url: postgres://gh:pw@127.0.0.1:5432/gh
router_settings:
  redis_host: 127.0.0.1
  redis_port: 6380
  redis_password: "p@ss/word"
gatehouse:
  key_cache_ttl: 30
  redis_timeout: 0.05
  redis_key_prefix: "{gh-eu}:"
"#,
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(
        c.database_url.as_ref().map(Secret::expose),
        Some("postgres://gh:pw@127.0.0.1:5432/gh")
    );
    assert_eq!(
        c.redis.as_ref().map(|r| r.url.expose()),
        Some("redis://:p%40ss%2Fword@127.0.0.1:6380")
    );
    assert_eq!(c.gatehouse.key_cache_ttl, Duration::from_secs(30));
    assert_eq!(c.gatehouse.redis_timeout, Duration::from_millis(50));
    assert_eq!(c.gatehouse.redis_key_prefix, "{gh-eu}:");
    assert!(
        !format!("{c:?}").contains("p@ss"),
        "redis password in Debug"
    );
    assert!(
        !format!("{c:?}").contains(":pw@"),
        "database password in Debug"
    );
}

#[test]
fn database_and_redis_defaults_and_errors() {
    let c = load("{}").unwrap().config;
    assert!(c.database_url.is_none());
    assert!(c.redis.is_none());

    let p = problems(
        r#"
general_settings:
  database_url: mysql://x
router_settings:
  redis_url: redis://127.0.0.1:6379
  redis_port: 1
"#,
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("general_settings.database_url: expected sqlite")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("router_settings.redis_port: give either")),
        "{p:?}"
    );
    let p = problems("router_settings:\n  redis_url: http://x\n");
    assert_eq!(p, ["router_settings.redis_url: expected redis://…"]);
    let p = problems("router_settings:\n  redis_url: rediss://h:6380\n");
    assert!(p[0].contains("not supported yet"), "{p:?}");
    assert_eq!(c.gatehouse.redis_key_prefix, "gatehouse:");
    for bad in ["\"\"", "\"a b\"", "3"] {
        let p = problems(&format!("gatehouse:\n  redis_key_prefix: {bad}\n"));
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert!(
            p[0].starts_with("gatehouse.redis_key_prefix: expected"),
            "{p:?}"
        );
    }
}

#[test]
fn database_url_from_the_environment() {
    let env = |name: &str| (name == "DATABASE_URL").then(|| "sqlite:/tmp/x.db".to_owned());
    let c = load_str("{}", &env).unwrap().config;
    assert_eq!(
        c.database_url.as_ref().map(Secret::expose),
        Some("sqlite:/tmp/x.db")
    );
}

#[test]
fn budget_fallback_is_refuse_by_default_and_parsed_strictly() {
    let c = load("{}").unwrap().config;
    assert_eq!(c.gatehouse.budget_fallback, BudgetFallback::Refuse);
    let c = load("gatehouse:\n  budget_fallback: local\n")
        .unwrap()
        .config;
    assert_eq!(c.gatehouse.budget_fallback, BudgetFallback::Local);
    let c = load("gatehouse:\n  budget_fallback: refuse\n")
        .unwrap()
        .config;
    assert_eq!(c.gatehouse.budget_fallback, BudgetFallback::Refuse);
    assert_eq!(
        problems("gatehouse:\n  budget_fallback: open\n"),
        ["gatehouse.budget_fallback: expected `refuse` or `local`"]
    );
    assert_eq!(
        problems("gatehouse:\n  budget_fallback: 1\n"),
        ["gatehouse.budget_fallback: expected a string, found a number"]
    );
}
