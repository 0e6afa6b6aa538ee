//! The answers any operation can give whatever its handler does: 503 while the database is
//! out of reach (`database_unavailable`, or `overloaded` when the write queue is full), and
//! 429 `rate_limited` on every operation that takes a credential. Added to every operation
//! of the document by one [`utoipa::Modify`], so new routes get them too.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, ResponseBuilder, Type};
use utoipa::Modify;

pub struct OperationalResponses;

impl Modify for OperationalResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let global_security = openapi.security.as_ref().is_some_and(|s| !s.is_empty());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_to(operation, global_security);
            }
        }
    }
}

fn add_to(operation: &mut Operation, global_security: bool) {
    let responses = &mut operation.responses.responses;
    responses.entry("503".into()).or_insert_with(|| {
        error_response(
            "`database_unavailable` (the database cannot be reached) or `overloaded` (too many writes \
             waiting); retry after `Retry-After` seconds",
            false,
        )
        .into()
    });
    // An operation with `security()` (empty) takes no credential and is not limited.
    let takes_credential = match &operation.security {
        Some(requirements) => requirements
            .iter()
            .any(|r| serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))),
        None => global_security,
    };
    if takes_credential {
        responses.entry("429".into()).or_insert_with(|| {
            error_response(
                "`rate_limited`: this credential (or, for purchases, this customer) is over its limit on \
                 this replica",
                true,
            )
            .into()
        });
    }
}

fn error_response(description: &str, rate_limit_headers: bool) -> utoipa::openapi::Response {
    let seconds = || HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)));
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .header(
            "Retry-After",
            seconds().description(Some("Seconds to wait before retrying")).build(),
        );
    if rate_limit_headers {
        response = response
            .header(
                "RateLimit-Limit",
                seconds().description(Some("Requests the bucket holds")).build(),
            )
            .header(
                "RateLimit-Remaining",
                seconds().description(Some("Requests left in the bucket now")).build(),
            )
            .header(
                "RateLimit-Reset",
                seconds()
                    .description(Some("Seconds until the bucket is full again"))
                    .build(),
            );
    }
    response.build()
}
