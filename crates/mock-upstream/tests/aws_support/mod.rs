//! Test helpers shared by the AWS emulation's tests: a client-side SigV4 signer (aws-sigv4,
//! exactly as an AWS SDK signs) and an event-stream body decoder (aws-smithy-eventstream).

#![allow(dead_code, reason = "each test crate uses a different part")]

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::Bytes;
use mock_upstream::AwsIdentity;
use serde_json::Value;

pub const KEY: &str = "AKIAMOCKTEST00000001";
pub const SECRET: &str = "mockSecretAccessKeyForTests0000000000000";

pub fn identity() -> AwsIdentity {
    AwsIdentity::new(KEY, SECRET)
}

/// Signs requests as an AWS SDK would.
pub struct Signer {
    pub key: String,
    pub secret: String,
    pub token: Option<String>,
    pub service: &'static str,
    pub region: &'static str,
    pub time: SystemTime,
    /// Sign the path as sent instead of re-encoding it (the classic proxy mistake).
    pub single_encoding: bool,
}

impl Signer {
    pub fn new(identity: &AwsIdentity, service: &'static str) -> Self {
        Self {
            key: identity.access_key_id.clone(),
            secret: identity.secret_access_key.clone(),
            token: identity.session_token.clone(),
            service,
            region: "us-east-1",
            time: SystemTime::now(),
            single_encoding: false,
        }
    }

    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = secret.to_owned();
        self
    }

    /// A signed POST of `body` to `url`, with `content-type`.
    pub fn post(&self, url: &str, content_type: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        let credentials =
            Credentials::new(&self.key, &self.secret, self.token.clone(), None, "tests");
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        if self.single_encoding {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
        }
        let params = SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap();
        let headers = [("content-type", content_type)].into_iter();
        let signable =
            SignableRequest::new("POST", url, headers, SignableBody::Bytes(&body)).unwrap();
        let (instructions, _signature) = sign(signable, &params.into()).unwrap().into_parts();
        let mut request = reqwest::Client::new().post(url).header("content-type", content_type);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        request.body(body)
    }
}

/// Every frame of a complete event-stream body.
pub fn frames(mut body: Bytes) -> Vec<Message> {
    let mut decoder = MessageFrameDecoder::new();
    let mut out = Vec::new();
    let mut cut = false;
    while !body.is_empty() && !cut {
        match decoder.decode_frame(&mut body).unwrap() {
            DecodedFrame::Complete(message) => out.push(message),
            DecodedFrame::Incomplete => cut = true,
        }
    }
    assert!(!cut, "a frame is cut short");
    out
}

pub fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    let found = message.headers().iter().find(|h| h.name().as_str() == name)?;
    Some(found.value().as_string().ok()?.as_str())
}

/// The Anthropic event a `chunk` frame carries.
pub fn chunk_event(message: &Message) -> Value {
    let payload: Value = serde_json::from_slice(message.payload()).unwrap();
    let bytes = aws_smithy_types::base64::decode(payload["bytes"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
