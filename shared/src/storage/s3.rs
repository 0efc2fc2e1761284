//! The S3-compatible backend: multipart uploads and presigned downloads.
//!
//! Requests are built and signed (AWS SigV4, query-string form) by
//! rusty-s3, which does no I/O, with the platform's clock; they are sent
//! through [`Platform::fetch`], so the same code runs on every host.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload};
use rusty_s3::{Credentials, S3Action};

use crate::body::Body;
use crate::config::S3Config;
use crate::error::ApiError;
use crate::platform::Platform;

/// How long a signed request to the store stays valid.
const REQUEST_VALIDITY: Duration = Duration::from_secs(300);

/// How long a presigned download URL stays valid.
pub const DOWNLOAD_VALIDITY: Duration = Duration::from_secs(300);

impl S3Config {
    /// The store for one request on `platform`.
    pub fn store<'a, P: Platform>(&'a self, platform: &'a P) -> S3Store<'a, P> {
        S3Store {
            config: self,
            platform,
        }
    }
}

/// The object key of a run's data.
pub fn object_key(organization_id: uuid::Uuid, run_id: uuid::Uuid) -> String {
    format!("organizations/{organization_id}/runs/{run_id}/data")
}

/// One request's view of the bucket.
/// How long object storage has to answer one request (the native host's
/// client limit, on every host).
pub const S3_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct S3Store<'a, P> {
    config: &'a S3Config,
    platform: &'a P,
}

impl<P: Platform> S3Store<'_, P> {
    fn now(&self) -> jiff::Timestamp {
        let now = self.platform.now();
        jiff::Timestamp::from_second(now.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    fn credentials(&self) -> Option<&Credentials> {
        Some(&self.config.credentials)
    }

    async fn send(
        &self,
        method: http::Method,
        url: url::Url,
        headers: &[(&'static str, String)],
        body: Bytes,
        what: &str,
    ) -> Result<http::Response<Bytes>, ApiError> {
        let mut request = http::Request::builder().method(method).uri(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(body).map_err(ApiError::internal)?;
        let response = crate::platform::fetch_within(self.platform, request, S3_TIMEOUT)
            .await
            .map_err(|e| unavailable(what, &e))?;
        let status = response.status();
        // CompleteMultipartUpload may fail with a 200 and an <Error> body.
        let error_body = response.body().starts_with(b"<?xml")
            && response.body().windows(7).any(|w| w == b"<Error>");
        if !status.is_success() || error_body {
            let text = String::from_utf8_lossy(response.body());
            let code = text
                .split("<Code>")
                .nth(1)
                .and_then(|rest| rest.split("</Code>").next())
                .unwrap_or("");
            return Err(unavailable(what, &format!("{status} {code}")));
        }
        Ok(response)
    }

    /// Starts a multipart upload; returns its id.
    pub async fn create_upload(&self, key: &str, content_type: &str) -> Result<String, ApiError> {
        let mut action = self
            .config
            .bucket
            .create_multipart_upload(self.credentials(), key);
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        let url = action.sign_with_time(REQUEST_VALIDITY, &self.now());
        let response = self
            .send(
                http::Method::POST,
                url,
                &[("content-type", content_type.to_owned())],
                Bytes::new(),
                "create multipart upload",
            )
            .await?;
        let text = std::str::from_utf8(response.body()).map_err(ApiError::internal)?;
        let parsed = CreateMultipartUpload::parse_response(text)
            .map_err(|e| unavailable("create multipart upload", &e))?;
        Ok(parsed.upload_id().to_owned())
    }

    /// Uploads part `number` (from 1); returns its ETag.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: Bytes,
    ) -> Result<String, ApiError> {
        let action = self
            .config
            .bucket
            .upload_part(self.credentials(), key, number, upload_id);
        let url = action.sign_with_time(REQUEST_VALIDITY, &self.now());
        let length = body.len().to_string();
        let response = self
            .send(
                http::Method::PUT,
                url,
                &[("content-length", length)],
                body,
                "upload part",
            )
            .await?;
        response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| unavailable("upload part", &"no ETag in the answer"))
    }

    /// Completes a multipart upload from its parts' ETags, in order.
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), ApiError> {
        let action: CompleteMultipartUpload<'_, _> = self.config.bucket.complete_multipart_upload(
            self.credentials(),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign_with_time(REQUEST_VALIDITY, &self.now());
        let body = action.body();
        self.send(
            http::Method::POST,
            url,
            &[("content-type", "application/xml".to_owned())],
            Bytes::from(body),
            "complete multipart upload",
        )
        .await
        .map(drop)
    }

    /// Abandons a multipart upload (its parts are deleted).
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), ApiError> {
        let action = self
            .config
            .bucket
            .abort_multipart_upload(self.credentials(), key, upload_id);
        self.delete_signed(
            action.sign_with_time(REQUEST_VALIDITY, &self.now()),
            "abort multipart upload",
        )
        .await
    }

    /// Deletes an object (retention).
    pub async fn delete(&self, key: &str) -> Result<(), ApiError> {
        let action = self.config.bucket.delete_object(self.credentials(), key);
        self.delete_signed(
            action.sign_with_time(REQUEST_VALIDITY, &self.now()),
            "delete object",
        )
        .await
    }

    async fn delete_signed(&self, url: url::Url, what: &str) -> Result<(), ApiError> {
        self.send(http::Method::DELETE, url, &[], Bytes::new(), what)
            .await
            .map(drop)
    }

    /// The object's bytes `[start, end)` as they come from the store (a
    /// download through the API): the store's answer must begin within
    /// [`S3_TIMEOUT`]; its body is then passed on as it arrives.
    pub async fn open(&self, key: &str, start: u64, end: u64) -> Result<Body, ApiError> {
        if start >= end {
            return Ok(Body::default());
        }
        let url = self
            .config
            .bucket
            .get_object(self.credentials(), key)
            .sign_with_time(DOWNLOAD_VALIDITY, &self.now());
        let request = http::Request::get(url.as_str())
            .header(http::header::RANGE, format!("bytes={start}-{}", end - 1))
            .body(Bytes::new())
            .map_err(ApiError::internal)?;
        let response = crate::platform::within(
            self.platform,
            self.platform.fetch_streaming(request),
            S3_TIMEOUT,
        )
        .await
        .map_err(|e| unavailable("reading the object", &e))?;
        // Always asked for a range, so only its 206 naming that range is
        // those bytes (an object shorter than its record answers less).
        let status = response.status();
        let asked = format!("bytes {start}-{}/", end - 1);
        let range = response
            .headers()
            .get(http::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if status != http::StatusCode::PARTIAL_CONTENT || !range.starts_with(&asked) {
            return Err(unavailable(
                "reading the object",
                &format!("{status} {range}"),
            ));
        }
        Ok(response.into_body())
    }

    /// A presigned GET of the object that names the file for the browser.
    pub fn download_url(&self, key: &str, filename: &str, content_type: &str) -> url::Url {
        let mut action = self.config.bucket.get_object(self.credentials(), key);
        action
            .query_mut()
            .insert("response-content-disposition", super::attachment(filename));
        action
            .query_mut()
            .insert("response-content-type", content_type.to_owned());
        action.sign_with_time(DOWNLOAD_VALIDITY, &self.now())
    }
}

fn unavailable(what: &str, cause: &dyn fmt::Display) -> ApiError {
    ApiError::DependencyDown {
        component: "object storage",
        cause: format!("{what}: {cause}"),
    }
}
