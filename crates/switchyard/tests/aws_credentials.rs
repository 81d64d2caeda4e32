//! AWS credentials resolved by the running binary, as a user has them: a temporary HOME with
//! `~/.aws/config` and an SSO token cache, `AWS_ENDPOINT_URL_*` pointing STS, the SSO portal
//! and Bedrock at the mock. An expired SSO token is AWS-03, and after a fresh token is
//! written the same running gateway serves; assume-role and web identity go through the
//! mock STS; credential_process runs; no region anywhere is AWS-14.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use mock_upstream::{AwsIdentity, MockUpstream};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

const MASTER: &str = "sk-gw-master-0123456789";
const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIAMOCKCREDENTIALS1";
const SECRET: &str = "mockCredentialsSecretAccessKey0000000000";
const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

const AWS_CONFIG: &str = "\
[profile cc]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = BedrockUsers
region = us-east-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
";

struct Gateway {
    child: Child,
    url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary HOME and the gateway config in it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(aws_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws/sso/cache")).unwrap();
        std::fs::write(dir.path().join(".aws/config"), aws_config).unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `~/.aws/sso/cache/<sha1 of the session name>.json`, as `aws sso login` writes it.
    fn write_sso_token(&self, session: &str, token: &str, expires_in: i64) {
        let hex: String =
            Sha1::digest(session.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
            + expires_in;
        let expires = aws_smithy_types::DateTime::from_secs(at)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap();
        let body = json!({"startUrl": "https://corp.awsapps.com/start", "region": "us-east-1",
                          "accessToken": token, "expiresAt": expires});
        std::fs::write(self.path(&format!(".aws/sso/cache/{hex}.json")), body.to_string()).unwrap();
    }

    fn write_config(&self, params: &[&str]) -> PathBuf {
        let mut yaml = format!(
            "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: bedrock/{MODEL}\n"
        );
        for p in params {
            yaml.push_str(&format!("      {p}\n"));
        }
        yaml.push_str(&format!(
            "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: {MASTER}\n"
        ));
        let path = self.path("gateway.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Spawns the binary with only PATH, HOME and the AWS endpoint overrides set.
    fn spawn(&self, mock: &MockUpstream, config: &Path, extra: &[&str]) -> Gateway {
        self.spawn_with(mock, config, extra, &[])
    }

    fn spawn_with(
        &self,
        mock: &MockUpstream,
        config: &Path,
        extra: &[&str],
        vars: &[(&str, &str)],
    ) -> Gateway {
        let mut args = vec!["--config", config.to_str().unwrap(), "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(&args)
            .env_clear()
            .envs(vars.iter().copied())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ENDPOINT_URL_SSO", mock.url())
            .env("AWS_ENDPOINT_URL_STS", mock.url())
            .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", mock.url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn switchyard");
        let stdout = child.stdout.take().unwrap();
        let line =
            BufReader::new(stdout).lines().next().expect("the gateway printed nothing").unwrap();
        let url = line
            .strip_prefix("Switchyard listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Gateway { child, url }
    }
}

async fn say(gw: &Gateway) -> (u16, Value) {
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .json(
            &json!({"model": "balanced", "messages": [{"role": "user", "content": "Say: WORKS"}]}),
        )
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn bedrock_calls(mock: &MockUpstream) -> Vec<mock_upstream::Received> {
    mock.received().into_iter().filter(|r| r.path.starts_with("/model/")).collect()
}

#[tokio::test]
async fn an_expired_sso_token_is_aws03_and_a_fresh_one_works_without_a_restart() {
    let mock = MockUpstream::start().await;
    let home = Home::new(AWS_CONFIG);
    home.write_sso_token("corp", "tok-expired", -3600);
    let config = home.write_config(&["aws_profile_name: cc"]);
    // The incident: stale temporary keys exported into the environment. The named profile
    // wins; the keys are never used.
    let stale = [
        ("AWS_ACCESS_KEY_ID", "ASIASTALEEXPORTED001"),
        ("AWS_SECRET_ACCESS_KEY", "staleSecret"),
        ("AWS_SESSION_TOKEN", "staleToken"),
    ];
    let gw = home.spawn_with(&mock, &config, &[], &stale);

    let (status, v) = say(&gw).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"]["code"], "credentials_expired", "{v}");
    assert_eq!(v["error"]["diagnosis"]["id"], "AWS-03", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("aws sso login --profile cc"), "{message}");
    assert!(message.contains("SSO session `corp` (https://corp.awsapps.com/start)"), "{message}");
    assert!(bedrock_calls(&mock).is_empty(), "nothing is sent without credentials");

    // `aws sso login`: a fresh token in the cache, which the portal accepts.
    mock.aws().sso_token("tok-fresh", ACCOUNT, "BedrockUsers");
    home.write_sso_token("corp", "tok-fresh", 8 * 3600);
    let (status, v) = say(&gw).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "WORKS");
    let portal: Vec<_> =
        mock.received().into_iter().filter(|r| r.path == "/federation/credentials").collect();
    assert_eq!(portal.len(), 1);
    assert_eq!(portal[0].header("x-amz-sso_bearer_token"), Some("tok-fresh"));
    let issued = &mock.aws().issued()[0];
    let call = &bedrock_calls(&mock)[0];
    assert!(
        call.header("authorization")
            .unwrap()
            .contains(&format!("Credential={}/", issued.access_key_id))
    );
    assert_eq!(call.header("x-amz-security-token"), issued.session_token.as_deref());
    assert!(!call.header("authorization").unwrap().contains("ASIASTALE"));

    // Cached: the next request signs with the same credentials, no second portal call.
    assert_eq!(say(&gw).await.0, 200);
    let portal =
        mock.received().into_iter().filter(|r| r.path == "/federation/credentials").count();
    assert_eq!(portal, 1);
}

#[tokio::test]
async fn a_role_is_assumed_through_sts_keeping_the_base_session_token() {
    let mock = MockUpstream::start().await;
    let role = "arn:aws:iam::210987654321:role/BedrockInvoker";
    let token = "IQoJb3JpZ2luX2VjEMockBaseSessionToken==";
    mock.aws()
        .identity(AwsIdentity::new("ASIAMOCKBASE00000001", SECRET).session_token(token))
        .role(role, Some("ext-1"));
    let home = Home::new("");
    let config = home.write_config(&[
        "aws_access_key_id: ASIAMOCKBASE00000001",
        &format!("aws_secret_access_key: {SECRET}"),
        &format!("aws_session_token: {token}"),
        &format!("aws_role_name: {role}"),
        "aws_session_name: switchyard-test",
        "aws_external_id: ext-1",
        "aws_region_name: us-west-2",
    ]);
    let gw = home.spawn(&mock, &config, &[]);
    let (status, v) = say(&gw).await;
    assert_eq!(status, 200, "{v}");
    let received = mock.received();
    let sts = received.iter().find(|r| r.path == "/").expect("an STS call");
    let form = String::from_utf8_lossy(&sts.raw_body);
    assert!(form.contains("Action=AssumeRole"), "{form}");
    assert!(
        form.contains("ExternalId=ext-1") && form.contains("RoleSessionName=switchyard-test"),
        "{form}"
    );
    assert_eq!(
        sts.header("x-amz-security-token"),
        Some(token),
        "litellm#13918: the base token is kept"
    );
    let call = &bedrock_calls(&mock)[0];
    let assumed = &mock.aws().issued()[0];
    assert!(
        call.header("authorization")
            .unwrap()
            .contains(&format!("Credential={}/", assumed.access_key_id))
    );
    assert!(call.header("authorization").unwrap().contains("/us-west-2/bedrock/"));
}

#[tokio::test]
async fn a_web_identity_token_is_exchanged_at_sts() {
    let mock = MockUpstream::start().await;
    mock.aws().web_identity_token("eyJhbGciOiJSUzI1NiJ9.mock.token");
    let home = Home::new("");
    let config = home.write_config(&[
        "aws_web_identity_token: eyJhbGciOiJSUzI1NiJ9.mock.token",
        "aws_role_name: arn:aws:iam::123456789012:role/WebIdentityBedrock",
        "aws_region_name: us-east-1",
    ]);
    let gw = home.spawn(&mock, &config, &[]);
    let (status, v) = say(&gw).await;
    assert_eq!(status, 200, "{v}");
    let sts = mock.received().into_iter().find(|r| r.path == "/").unwrap();
    assert!(String::from_utf8_lossy(&sts.raw_body).contains("Action=AssumeRoleWithWebIdentity"));
}

#[tokio::test]
async fn credential_process_runs_and_a_profile_named_only_in_an_env_file_is_used() {
    let mock = MockUpstream::start().await;
    mock.aws().identity(AwsIdentity::new(KEY, SECRET));
    let process = format!(
        "sh -c 'echo {{\\\"Version\\\":1,\\\"AccessKeyId\\\":\\\"{KEY}\\\",\\\"SecretAccessKey\\\":\\\"{SECRET}\\\"}}'"
    );
    let home = Home::new("");
    // The AWS config lives elsewhere, and both it and the profile are named in an env file.
    let elsewhere = home.path("corp-aws-config");
    std::fs::write(
        &elsewhere,
        format!("[profile proc]\nregion = eu-west-1\ncredential_process = {process}\n"),
    )
    .unwrap();
    let env_file = home.path("aws.env");
    std::fs::write(
        &env_file,
        format!("AWS_PROFILE=proc\nAWS_CONFIG_FILE={}\n", elsewhere.display()),
    )
    .unwrap();
    let config = home.write_config(&[]);
    let gw = home.spawn(&mock, &config, &["--env-file", env_file.to_str().unwrap()]);
    let (status, v) = say(&gw).await;
    assert_eq!(status, 200, "{v}");
    let auth = bedrock_calls(&mock)[0].header("authorization").unwrap().to_owned();
    assert!(
        auth.contains(&format!("Credential={KEY}/")) && auth.contains("/eu-west-1/bedrock/"),
        "{auth}"
    );
}

#[tokio::test]
async fn no_region_anywhere_is_aws14() {
    let mock = MockUpstream::start().await;
    let home = Home::new("[profile cc]\nsso_session = corp\n");
    let config = home.write_config(&["aws_profile_name: cc"]);
    let gw = home.spawn(&mock, &config, &[]);
    let (status, v) = say(&gw).await;
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["error"]["code"], "configuration");
    assert_eq!(v["error"]["diagnosis"]["id"], "AWS-14");
    assert!(v["error"]["message"].as_str().unwrap().contains("aws_region_name"), "{v}");
    assert!(mock.received().is_empty());
}
