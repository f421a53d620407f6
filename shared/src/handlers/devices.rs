use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::AppState;
use crate::auth::Principal;
use crate::domain::{
    BATTERY_PERCENT, CPU_CORES, DEFAULT_BATTERY_PERCENT, Device, DeviceId, DeviceType, Fields,
    MEMORY_MB,
};
use crate::http::{ApiError, json_body, json_response};
use crate::store::RegisterDevice;

/// A device as the API lists it, in the old backend's field names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceView<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    device_type: DeviceType,
    status: &'static str,
    battery: f64,
    charging: bool,
    cpu: i64,
    memory: i64,
    #[serde(with = "time::serde::rfc3339")]
    registered_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    /// The old backend's harvesting figures, which its frontend reads. Nothing reports them yet.
    temperature: Option<f64>,
    tasks_completed: u64,
}

impl<'a> From<&'a Device> for DeviceView<'a> {
    fn from(device: &'a Device) -> Self {
        Self {
            id: &device.device_id,
            device_type: device.device_type,
            status: REGISTERED,
            battery: device.battery_percent,
            charging: device.is_charging,
            cpu: device.cpu_cores,
            memory: device.memory_mb,
            registered_at: device.registered_at,
            last_seen: device.updated_at,
            temperature: None,
            tasks_completed: 0,
        }
    }
}

const REGISTERED: &str = "registered";

/// `POST /api/idle-compute/devices`: 201 for a new device id, 200 when the caller registers
/// its own id again (the details are replaced), 409 when the id is another user's.
pub async fn register_device(
    req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let mut fields = Fields::new(json_body(&req)?);
    let device_id = fields.string("device_id", DeviceId::parse);
    let device_type = fields.string("device_type", DeviceType::parse);
    let cpu_cores = fields.integer("cpu_cores", CPU_CORES);
    let memory_mb = fields.integer("memory_mb", MEMORY_MB);
    let battery = fields.number(
        "battery_percent",
        BATTERY_PERCENT,
        Some(DEFAULT_BATTERY_PERCENT),
    );
    let is_charging = fields.boolean("is_charging", Some(false));
    let (
        Some(device_id),
        Some(device_type),
        Some(cpu_cores),
        Some(memory_mb),
        Some(battery),
        Some(is_charging),
    ) = (
        device_id,
        device_type,
        cpu_cores,
        memory_mb,
        battery,
        is_charging,
    )
    else {
        return Err(fields.into_error().into());
    };
    let now = OffsetDateTime::now_utc();
    let device = Device {
        device_id: device_id.into_string(),
        user_id: user.id,
        device_type,
        cpu_cores,
        memory_mb,
        battery_percent: battery,
        is_charging,
        registered_at: now,
        updated_at: now,
    };
    let status = match state.store.register_device(&device).await? {
        RegisterDevice::Registered => StatusCode::CREATED,
        RegisterDevice::Updated => StatusCode::OK,
        RegisterDevice::OwnedByAnother => {
            return Err(ApiError::Conflict(
                "Device id is registered to another user".into(),
            ));
        }
    };
    tracing::info!(user_id = %user.id, new = status == StatusCode::CREATED, "device registered");
    Ok(json_response(
        status,
        &json!({"success": true, "deviceId": device.device_id, "status": REGISTERED}),
    ))
}

/// `GET /api/idle-compute/devices`: the caller's devices.
pub async fn list_devices(
    _req: Request,
    principal: Principal,
    state: &AppState,
) -> Result<Response<Body>, ApiError> {
    let user = principal.user();
    let devices = state.store.devices(user.id).await?;
    let devices: Vec<DeviceView> = devices.iter().map(DeviceView::from).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"total": devices.len(), "devices": devices}),
    ))
}
