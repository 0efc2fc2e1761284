//! Rate limits: each class admits exactly its limit, however the requests race.

use std::future::Future;

use anyhow::{Context as _, ensure};
use futures::future::join_all;
use serde_json::{Value, json};
use shared::auth::Role;

use crate::client::TestApp;

crate::cases![rate_limits_admit_exactly_the_limit_under_concurrency,];

async fn rate_limits_admit_exactly_the_limit_under_concurrency(
    app: &TestApp,
) -> anyhow::Result<()> {
    let host = app
        .host_with(&[
            ("RATE_LIMIT_AUTH", "5/60/900"),
            ("RATE_LIMIT_AUTHENTICATED", "10/60/300"),
            ("RATE_LIMIT_ADMIN", "10/60/60"),
        ])
        .await?;
    let base = host.base_url.clone();
    let result = async {
        // 20 concurrent logins of one account: exactly 5 get through.
        let user = app.new_org_user(Role::Viewer).await?;
        let body = json!({ "email": user.email, "password": user.password });
        let logins = (0..20).map(|_| {
            let request = app
                .http
                .post(format!("{base}/api/auth/login"))
                .json(&body)
                .send();
            async move {
                let response = request.await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let json: Value = response.json().await?;
                anyhow::Ok((status, headers, json))
            }
        });
        let answers = futures_join_all(logins).await?;
        let passed = answers.iter().filter(|(s, _, _)| *s == 200).count();
        let limited: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
        ensure!(passed == 5, "passed {passed}, limited {}", limited.len());
        ensure!(
            limited.len() == 15,
            "passed {passed}, limited {}",
            limited.len()
        );
        let (_, headers, json) = limited[0];
        ensure!(json["error"]["code"] == "RATE_LIMIT_EXCEEDED", "{json}");
        let retry: u64 = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .context("Retry-After")?;
        ensure!((1..=900).contains(&retry), "Retry-After {retry}");
        let policy = headers
            .get("ratelimit-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        ensure!(policy == "\"auth\";q=5;w=60", "RateLimit-Policy {policy}");
        ensure!(headers.get("ratelimit").is_some(), "RateLimit header");
        // Blocked for 15 minutes: the next attempt is refused too.
        let again = app
            .http
            .post(format!("{base}/api/auth/login"))
            .json(&body)
            .send()
            .await?;
        ensure!(again.status().as_u16() == 429);
        let retry: u64 = again
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        ensure!(
            retry > 800,
            "the block lasts 15 minutes, Retry-After {retry}"
        );

        // 30 concurrent reads by one user: exactly 10 get through.
        let reader = app.new_org_user(Role::Viewer).await?;
        let token = app.login(&reader).await?;
        let reads = (0..30).map(|_| {
            let request = app
                .http
                .get(format!("{base}/api/v1/instruments"))
                .bearer_auth(&token)
                .send();
            async move { anyhow::Ok(request.await?.status().as_u16()) }
        });
        let statuses = futures_join_all(reads).await?;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        ensure!(ok == 10, "reads passed {ok}, limited {limited}");
        ensure!(limited == 20, "reads passed {ok}, limited {limited}");
        // The block is on the record once, not once per refusal.
        let blocks: i64 = app
            .db()
            .await?
            .query_one(
                "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND user_id = $2 \
                   AND event_type = 'RATE_LIMIT_BLOCKED' AND outcome = 'DENIED'",
                &[&reader.organization_id, &reader.id],
            )
            .await?
            .get(0);
        ensure!(blocks == 1, "{blocks} RATE_LIMIT_BLOCKED events");

        // An API key may be slower than its creator's class, never faster:
        // asked for more it is refused, and one that holds more (the
        // limits were lowered since) gets the class's.
        let (_, admin_token) = app.admin().await?;
        let create = |per_minute: u32| {
            app.http
                .post(format!("{base}/api/v1/api-keys"))
                .bearer_auth(&admin_token)
                .json(&json!({"name": "sync", "permissions": ["instruments:view"], "rateLimit": per_minute}))
                .send()
        };
        let faster = create(50).await?;
        ensure!(faster.status().as_u16() == 400, "a key faster than its class: {}", faster.status());
        let faster: Value = faster.json().await?;
        ensure!(faster["error"]["details"][0]["field"] == "rateLimit", "{faster}");
        let slower: Value = create(5).await?.json().await?;
        let key = slower["data"]["key"].as_str().context("key")?.to_owned();
        let key_id: uuid::Uuid = slower["data"]["id"].as_str().context("id")?.parse()?;
        app.db()
            .await?
            .execute("UPDATE api_keys SET rate_limit = 100000 WHERE id = $1", &[&key_id])
            .await?;
        let reads = (0..20).map(|_| {
            let request = app
                .http
                .get(format!("{base}/api/v1/instruments"))
                .header("x-api-key", &key)
                .header("cf-connecting-ip", "127.0.0.1")
                .send();
            async move { anyhow::Ok(request.await?.status().as_u16()) }
        });
        let statuses = futures_join_all(reads).await?;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        ensure!(ok == 10, "a key holding 100000/min got {ok} of 20 under its class's 10");
        anyhow::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || host.stop()).await?;
    result
}

/// Runs futures concurrently on this task and collects their results.
async fn futures_join_all<T>(
    futures: impl IntoIterator<Item = impl Future<Output = anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    for result in join_all(handles).await {
        out.push(result?);
    }
    Ok(out)
}
