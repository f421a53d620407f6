use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Principal;
use crate::domain::{
    CPU_REQUIRED, EscapedText, Fields, GPU_REQUIRED, JOB_NAME_CHARS, Job, JobStatus,
    MEMORY_REQUIRED, NON_NEGATIVE, SlaTier,
};
use crate::http::{
    ApiError, encode_cursor, json_body, json_response, page_request, path_parameter, prefetched,
    query_fields,
};
use crate::store::{CancelJob, JobRead};

/// A job as the API answers it, in the old backend's field names.
#[derive(Serialize)]
struct JobView<'a> {
    id: Uuid,
    name: &'a str,
    status: JobStatus,
    sla: SlaTier,
    cpu: f64,
    memory: f64,
    gpu: f64,
    duration_estimate: Option<f64>,
    data_size_mb: Option<f64>,
    #[serde(with = "time::serde::rfc3339")]
    submitted: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated: OffsetDateTime,
    /// The old backend's placement fields, which its frontend reads. Nothing places jobs yet.
    node: Option<&'a str>,
    progress: u8,
    started: Option<&'a str>,
    completed: Option<&'a str>,
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(job: &'a Job) -> Self {
        Self {
            id: job.id,
            name: &job.name,
            status: job.status,
            sla: job.sla_tier,
            cpu: job.cpu_required,
            memory: job.memory_required,
            gpu: job.gpu_required,
            duration_estimate: job.duration_estimate,
            data_size_mb: job.data_size_mb,
            submitted: job.submitted_at,
            updated: job.updated_at,
            node: None,
            progress: 0,
            started: None,
            completed: None,
        }
    }
}

fn job_not_found() -> ApiError {
    ApiError::NotFound("Job not found".into())
}

/// The `{id}` of the path. Anything that is not a job id names no job.
fn job_id(req: &Request) -> Result<Uuid, ApiError> {
    path_parameter(req, "id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(job_not_found)
}

/// `POST /api/scheduler/jobs`
pub async fn submit_job(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut fields = Fields::new(json_body(&req)?);
    let name = fields.string("name", |raw| EscapedText::parse(raw, JOB_NAME_CHARS));
    let sla_tier = fields.string("sla_tier", SlaTier::parse);
    let cpu = fields.number("cpu_required", CPU_REQUIRED, None);
    let memory = fields.number("memory_required", MEMORY_REQUIRED, None);
    let gpu = fields.number("gpu_required", GPU_REQUIRED, Some(0.0));
    let duration = fields.optional_number("duration_estimate", NON_NEGATIVE);
    let data_size = fields.optional_number("data_size_mb", NON_NEGATIVE);
    let (
        Some(name),
        Some(sla_tier),
        Some(cpu),
        Some(memory),
        Some(gpu),
        Some(duration),
        Some(data_size),
    ) = (name, sla_tier, cpu, memory, gpu, duration, data_size)
    else {
        return Err(fields.into_error().into());
    };
    let now = OffsetDateTime::now_utc();
    let job = Job {
        id: Uuid::now_v7(),
        user_id: user.id,
        name: name.into_string(),
        sla_tier,
        cpu_required: cpu,
        memory_required: memory,
        gpu_required: gpu,
        duration_estimate: duration,
        data_size_mb: data_size,
        status: JobStatus::Pending,
        submitted_at: now,
        updated_at: now,
    };
    state.store.create_job(&job).await?;
    tracing::info!(job_id = %job.id, user_id = %user.id, "job submitted");
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "success": true,
            "jobId": job.id,
            "status": job.status,
            "sla": job.sla_tier,
            "estimatedStartTime": null,
            "job": JobView::from(&job),
        }),
    ))
}

/// `GET /api/scheduler/jobs?status=&limit=&cursor=`
pub async fn list_jobs(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut query = Fields::new(query_fields(&req)?);
    let status = query.optional_string("status", JobStatus::parse);
    let page = page_request(&req, &mut query)?;
    let (Some(status), Some(page)) = (status, page) else {
        return Err(query.into_error().into());
    };
    let page = state.store.jobs(user.id, status, page).await?;
    let jobs: Vec<JobView> = page.items.iter().map(JobView::from).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "total": jobs.len(),
            "jobs": jobs,
            "next_cursor": page.next.map(encode_cursor),
        }),
    ))
}

/// `GET /api/scheduler/jobs/{id}`: only the caller's own jobs; any other id is 404.
pub async fn get_job(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let read = JobRead {
        owner: user.id,
        job: job_id(&req)?,
    };
    let job = state
        .store
        .first_read(&read, prefetched(&req))
        .await?
        .ok_or_else(job_not_found)?;
    Ok(json_response(StatusCode::OK, &JobView::from(&job)))
}

/// What `get_job` reads first: the caller's job.
pub fn get_job_first_read(req: &Request, user: Option<Uuid>) -> Option<JobRead> {
    Some(JobRead {
        owner: user?,
        job: job_id(req).ok()?,
    })
}

/// `DELETE /api/scheduler/jobs/{id}`: cancels a pending or running job.
pub async fn cancel_job(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let job_id = job_id(&req)?;
    match state
        .store
        .cancel_job(user.id, job_id, OffsetDateTime::now_utc())
        .await?
    {
        CancelJob::Cancelled(job) => {
            tracing::info!(job_id = %job.id, user_id = %user.id, "job cancelled");
            Ok(json_response(
                StatusCode::OK,
                &json!({"success": true, "jobId": job.id, "status": job.status}),
            ))
        }
        CancelJob::NotFound => Err(job_not_found()),
        CancelJob::NotCancellable(status) => Err(ApiError::Conflict(format!(
            "Job is {} and can no longer be cancelled",
            status.as_str()
        ))),
    }
}
