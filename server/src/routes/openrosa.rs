//! OpenRosa 1.0 for ODK Collect, under each enrolled phone's own address
//! `/odk/{token}` (the token names the device; see `services::devices`).
//!
//! | route | what Collect does with it |
//! | --- | --- |
//! | `GET …/formList` | the forms the worker's role may submit, latest version each, with the MD5 of the exact XForm bytes |
//! | `GET …/forms/{form_id}/{version}/form.xml` | the XForm |
//! | `GET …/forms/{form_id}/{version}/manifest` | its one media file, `places.csv` |
//! | `GET …/forms/{form_id}/{version}/places.csv` | the hotspots and units of the worker's area (the choices of "where it happened") |
//! | `HEAD …/submission` | 204, and how large one POST may be |
//! | `POST …/submission` | multipart: `xml_submission_file` and one part per photo |
//!
//! Every answer carries `X-OpenRosa-Version: 1.0` and `X-OpenRosa-Accept-Content-Length`;
//! XML answers are `text/xml; charset=utf-8`, errors an `OpenRosaResponse` whose message
//! (in Vietnamese, what Collect shows the worker) names each fault. A refused token is
//! 403 (never 401: Collect would ask for a password nobody has). Collect's `?deviceID=`
//! and its `Date` header are accepted and not used.

use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use mobile_schema::FormDefinition;

use crate::error::ApiError;
use crate::extract::RequestOrigin;
use crate::services::devices::{self, EnrolledDevice, OPENROSA_PREFIX};
use crate::services::odk::{self, OdkUpload, ReceivedFile};
use crate::services::{forms as form_service, photos};
use crate::state::AppState;

const XML: &str = "text/xml; charset=utf-8";
const OPENROSA_NS: &str = "http://openrosa.org/http/response";

/// Most parts one POST may have (Collect sends at most 100 files a POST, and the XML).
const MAX_PARTS: usize = 128;

/// An error on an OpenRosa route: the API's error, told as an `OpenRosaResponse`.
#[derive(Debug)]
pub struct OpenRosaError(pub ApiError);

impl From<ApiError> for OpenRosaError {
    fn from(e: ApiError) -> Self {
        OpenRosaError(e)
    }
}

impl IntoResponse for OpenRosaError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() && !matches!(self.0, ApiError::Unavailable { .. }) {
            tracing::error!(error = %self.0, "OpenRosa request failed");
        }
        let message = vietnamese(&self.0);
        let mut response = (status, xml_body(&envelope("error", &message))).into_response();
        if let ApiError::Unavailable {
            retry_after_secs, ..
        }
        | ApiError::TooManyRequests {
            retry_after_secs, ..
        } = &self.0
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

type OrResult<T> = Result<T, OpenRosaError>;

/// The enrolled phone a request's token names (403 otherwise).
pub struct OdkDevice(pub EnrolledDevice);

impl FromRequestParts<AppState> for OdkDevice {
    type Rejection = OpenRosaError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> OrResult<Self> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("OpenRosa path: {e}")))?;
        let token = params
            .iter()
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        Ok(OdkDevice(devices::authenticate(state, &token).await?))
    }
}

/// The OpenRosa base address of the request (`{origin}/odk/{token}`).
fn base_url(origin: &str, parts_token: &str) -> String {
    devices::odk_server_url(origin, parts_token)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn envelope(nature: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OpenRosaResponse xmlns=\"{OPENROSA_NS}\" items=\"0\"><message nature=\"{nature}\">{}</message></OpenRosaResponse>\n",
        escape(message)
    )
}

fn xml_body(xml: &str) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, XML)], xml.to_string())
}

/// Adds the OpenRosa headers to every answer of these routes.
async fn openrosa_headers(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert("x-openrosa-version", HeaderValue::from_static("1.0"));
    headers.insert(
        "x-openrosa-accept-content-length",
        HeaderValue::from(state.config.odk_max_submission_bytes),
    );
    response
}

/// `GET …/formList`: the forms this worker may submit, latest version of each.
async fn form_list(
    State(state): State<AppState>,
    OdkDevice(device): OdkDevice,
    RequestOrigin(origin): RequestOrigin,
    params: RawPathParams,
) -> OrResult<Response> {
    let base = base_url(&origin, token_of(&params));
    let role = device.principal.role;
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xforms xmlns=\"http://openrosa.org/xforms/xformsList\">\n",
    );
    for form in form_service::list_latest(&state.db, role).await? {
        if !form_service::role_may_submit(&form.roles, role) {
            continue;
        }
        let def: FormDefinition = serde_json::from_value(form.definition.clone())
            .map_err(|e| ApiError::Internal(e.into()))?;
        let doc = odk::xform(&state, &form.form_id, form.version).await?;
        let at = format!("{base}/forms/{}/{}", form.form_id, form.version);
        xml.push_str(&format!(
            "  <xform>\n    <formID>{}</formID>\n    <name>{}</name>\n    <version>{}</version>\n    <hash>md5:{}</hash>\n    <downloadUrl>{}/form.xml</downloadUrl>\n    <manifestUrl>{}/manifest</manifestUrl>\n  </xform>\n",
            escape(&form.form_id),
            escape(&format!("{} / {}", def.title.vi, def.title.en)),
            form.version,
            doc.md5,
            escape(&at),
            escape(&at),
        ));
    }
    xml.push_str("</xforms>\n");
    devices::touch(&state, &device.device).await?;
    Ok(xml_body(&xml).into_response())
}

fn token_of(params: &RawPathParams) -> &str {
    params
        .iter()
        .find(|(k, _)| *k == "token")
        .map_or("", |(_, v)| v)
}

/// The form version a download names, if the worker may submit it (404 otherwise).
async fn submittable(
    state: &AppState,
    device: &EnrolledDevice,
    params: &RawPathParams,
) -> OrResult<(String, u32)> {
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let form_id = get("form_id");
    let version: u32 = get("version")
        .parse()
        .map_err(|_| ApiError::NotFound("form version"))?;
    let row = form_service::get_version(&state.db, &form_id, Some(version)).await?;
    let def = form_service::definition_of(&row)?;
    if !form_service::role_may_submit(&def.roles, device.principal.role) {
        return Err(ApiError::NotFound("form version").into());
    }
    Ok((form_id, version))
}

/// `GET …/forms/{form_id}/{version}/form.xml`: the XForm, byte for byte what the list hashed.
async fn form_xml(
    State(state): State<AppState>,
    OdkDevice(device): OdkDevice,
    params: RawPathParams,
) -> OrResult<Response> {
    let (form_id, version) = submittable(&state, &device, &params).await?;
    let doc = odk::xform(&state, &form_id, version).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(XML)),
            (
                header::ETAG,
                HeaderValue::from_str(&format!("\"{}\"", doc.md5))
                    .map_err(|e| ApiError::Internal(e.into()))?,
            ),
        ],
        doc.bytes.clone(),
    )
        .into_response())
}

/// `GET …/forms/{form_id}/{version}/manifest`: `places.csv`, with the MD5 of the bytes
/// this worker will get (it changes when their area's hotspots do, and Collect fetches it again).
async fn manifest(
    State(state): State<AppState>,
    OdkDevice(device): OdkDevice,
    RequestOrigin(origin): RequestOrigin,
    params: RawPathParams,
) -> OrResult<Response> {
    let (form_id, version) = submittable(&state, &device, &params).await?;
    let csv = odk::places_csv(&state, &device.principal).await?;
    let md5 = hex::encode(<md5::Md5 as sha2::Digest>::digest(&csv));
    let base = base_url(&origin, token_of(&params));
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<manifest xmlns=\"http://openrosa.org/xforms/xformsManifest\">\n  <mediaFile>\n    <filename>{}</filename>\n    <hash>md5:{md5}</hash>\n    <downloadUrl>{}</downloadUrl>\n  </mediaFile>\n</manifest>\n",
        mobile_schema::PLACES_FILE,
        escape(&format!("{base}/forms/{form_id}/{version}/{}", mobile_schema::PLACES_FILE)),
    );
    Ok(xml_body(&xml).into_response())
}

/// `GET …/forms/{form_id}/{version}/places.csv`.
async fn places(
    State(state): State<AppState>,
    OdkDevice(device): OdkDevice,
    params: RawPathParams,
) -> OrResult<Response> {
    submittable(&state, &device, &params).await?;
    let csv = odk::places_csv(&state, &device.principal).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

/// `HEAD …/submission` (and `GET`): 204 with the size Collect may send in one POST.
async fn preflight(OdkDevice(_device): OdkDevice) -> OrResult<StatusCode> {
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/submission`: the instance XML and its photos, streamed to the spool.
async fn submission(
    State(state): State<AppState>,
    OdkDevice(device): OdkDevice,
    headers: HeaderMap,
    body: Body,
) -> OrResult<Response> {
    let upload = read_multipart(&state, &headers, body).await?;
    let outcome = odk::receive(&state, &device, upload).await?;
    devices::touch(&state, &device.device).await?;
    let missing = outcome.photos_named - outcome.photos_stored;
    let mut message = if outcome.created {
        format!("Đã nhận {}.", outcome.form_title)
    } else {
        format!("{} đã được nhận trước đó.", outcome.form_title)
    };
    if outcome.photos_named > 0 {
        message.push_str(&format!(
            " Ảnh: đã có {}/{}",
            outcome.photos_stored, outcome.photos_named
        ));
        message.push_str(if missing > 0 {
            "; ảnh còn thiếu sẽ được gửi tiếp."
        } else {
            "."
        });
    }
    Ok((StatusCode::CREATED, xml_body(&envelope("", &message))).into_response())
}

/// Reads a multipart submission: the XML into memory (at most the JSON body limit), each
/// file to the spool with its SHA-256 (at most the photo limit), the whole at most the
/// advertised size.
async fn read_multipart(state: &AppState, headers: &HeaderMap, body: Body) -> OrResult<OdkUpload> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::UnsupportedMediaType(
            "expected `Content-Type: multipart/form-data` with a boundary".into(),
        )
    })?;
    let cfg = &state.config;
    let per_part = cfg.photo_body_limit.max(cfg.json_body_limit) as u64 + 64 * 1024;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(cfg.odk_max_submission_bytes as u64 + 1024 * 1024)
            .per_field(per_part),
    );
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut xml: Option<bytes::Bytes> = None;
    let mut incomplete = false;
    let mut files = Vec::new();
    let mut parts = 0usize;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_fault(e).into()),
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::invalid(
                "body",
                "too_many_parts",
                format!("at most {MAX_PARTS} parts in one submission"),
            )
            .into());
        }
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "xml_submission_file" => {
                if xml.is_some() {
                    return Err(ApiError::invalid(
                        "xml_submission_file",
                        "duplicate",
                        "the instance XML came twice",
                    )
                    .into());
                }
                xml = Some(read_part(field, cfg.json_body_limit).await?);
            }
            "*isIncomplete*" => {
                let value = read_part(field, 64).await?;
                incomplete = value.trim_ascii().eq_ignore_ascii_case(b"yes");
            }
            _ => {
                let filename = field
                    .file_name()
                    .map(str::to_string)
                    .filter(|f| !f.is_empty())
                    .unwrap_or(name);
                let mut stream = field.map(|chunk| chunk.map_err(|e| e.to_string()));
                let spooled = photos::spool_stream(state, None, &mut stream)
                    .await
                    .map_err(|e| match e {
                        ApiError::UnsupportedMediaType(why) => ApiError::UnsupportedMediaType(
                            format!("the attachment `{filename}`: {why}"),
                        ),
                        other => other,
                    })?;
                files.push(ReceivedFile { filename, spooled });
            }
        }
    }
    let xml = xml.ok_or_else(|| {
        ApiError::invalid(
            "xml_submission_file",
            "required",
            "the multipart body has no `xml_submission_file` part",
        )
    })?;
    Ok(OdkUpload {
        xml,
        incomplete,
        files,
    })
}

/// A part read whole, refused past `limit` bytes.
async fn read_part(mut field: multer::Field<'_>, limit: usize) -> OrResult<bytes::Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_fault)? {
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge.into());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn multipart_fault(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::invalid(
            "body",
            "malformed_multipart",
            format!("the multipart body is malformed: {other}"),
        ),
    }
}

/// What Collect shows the worker: the fault in Vietnamese, each field named.
fn vietnamese(e: &ApiError) -> String {
    match e {
        ApiError::Validation { errors, omitted } => {
            let mut lines = vec![format!("Biểu mẫu có {} lỗi:", errors.len() + omitted)];
            for f in errors {
                let field = f.field.strip_prefix("answers.").unwrap_or(&f.field);
                lines.push(format!("• {field}: {}", fault_vi(&f.code, &f.message)));
            }
            if *omitted > 0 {
                lines.push(format!("… và {omitted} lỗi khác."));
            }
            lines.join("\n")
        }
        ApiError::BadRequest { errors, detail } => errors.first().map_or_else(
            || format!("Yêu cầu không hợp lệ: {detail}"),
            |f| format!("Yêu cầu không hợp lệ ({}): {}", f.field, f.message),
        ),
        ApiError::Forbidden(why) if why.contains("address is unknown") => {
            "Địa chỉ máy chủ của điện thoại này không hợp lệ hoặc đã bị thu hồi. Hãy nhờ cán bộ giám sát đăng ký lại điện thoại.".into()
        }
        ApiError::Forbidden(_) => "Tài khoản của bạn không được gửi biểu mẫu này.".into(),
        ApiError::NotFound(_) => {
            "Máy chủ không có biểu mẫu hoặc phiên bản này. Hãy tải lại biểu mẫu trống.".into()
        }
        ApiError::Conflict { errors, .. } => match errors.first().map(|f| f.code.as_str()) {
            Some("edit_not_allowed") => "Chỉ sửa được lượt ghi của chính bạn mà cán bộ giám sát đã trả lại để sửa.".into(),
            _ => "Một biểu mẫu khác đã được gửi với cùng mã (instanceID). Gửi lại phải giống hệt bản đã gửi.".into(),
        },
        ApiError::PayloadTooLarge => "Tệp gửi lên quá lớn.".into(),
        ApiError::UnsupportedMediaType(why) => format!("Tệp đính kèm không phải ảnh hợp lệ: {why}"),
        ApiError::TooManyRequests { .. } => "Quá nhiều yêu cầu; hãy thử lại sau.".into(),
        ApiError::Unavailable { .. } => "Máy chủ đang bận hoặc kho ảnh tạm thời không truy cập được; hãy gửi lại sau.".into(),
        ApiError::RequestTimeout => "Gửi quá lâu; hãy gửi lại khi mạng tốt hơn.".into(),
        _ => "Lỗi máy chủ; lỗi đã được ghi lại. Hãy gửi lại sau.".into(),
    }
}

/// One fault in words a field worker reads; the English message when there is none.
fn fault_vi(code: &str, english: &str) -> String {
    let vi = match code {
        "required" => "bắt buộc phải trả lời",
        "wrong_type" => "sai kiểu giá trị",
        "out_of_range" => "giá trị nằm ngoài khoảng cho phép",
        "too_short" => "quá ngắn",
        "too_long" => "quá dài",
        "pattern_mismatch" => "không đúng định dạng",
        "not_a_choice" => "không phải một lựa chọn của câu hỏi",
        "duplicate_choice" => "chọn trùng",
        "too_few" => "quá ít",
        "too_many" => "quá nhiều",
        "bad_date" => "ngày không hợp lệ",
        "bad_datetime" => "thời điểm không hợp lệ",
        "bad_uic" => "mã UIC không hợp lệ (cần 6–20 chữ cái và chữ số)",
        "bad_sha256" | "bad_filename" => "tệp ảnh không hợp lệ",
        "bad_geopoint" => "toạ độ không hợp lệ",
        "unknown_field" => "biểu mẫu không có câu hỏi này",
        "hidden_field_present" => "câu hỏi đang ẩn nhưng vẫn có câu trả lời",
        "not_an_object" | "malformed" => "dữ liệu biểu mẫu bị hỏng",
        "unknown_hotspot" => "không có điểm nóng này trong địa bàn của bạn",
        "inactive_hotspot" => "điểm nóng này đã ngừng hoạt động",
        "outside_your_area" => "địa điểm nằm ngoài địa bàn của bạn",
        "place_mismatch" | "bad_place" => "địa điểm không hợp lệ",
        "unknown_referral" => "không có mã chuyển gửi này trong địa bàn của bạn",
        "in_the_future" => "thời gian trên điện thoại sai; hãy kiểm tra ngày giờ",
        "before_started_at" => "thời điểm kết thúc trước thời điểm bắt đầu",
        "unnamed_attachment" => "tệp đính kèm không được câu hỏi nào nhắc đến",
        "duplicate_attachment" => "tệp đính kèm bị gửi hai lần",
        "bad_instance_id" => "mã biểu mẫu (instanceID) không hợp lệ",
        "nul_character" => "có ký tự không hợp lệ",
        _ => return english.to_string(),
    };
    vi.to_string()
}

pub fn router(state: &AppState) -> Router<AppState> {
    let at = |path: &str| format!("{OPENROSA_PREFIX}/{{token}}{path}");
    Router::new()
        .route(&at("/formList"), get(form_list))
        .route(&at("/forms/{form_id}/{version}/form.xml"), get(form_xml))
        .route(&at("/forms/{form_id}/{version}/manifest"), get(manifest))
        .route(
            &at(&format!(
                "/forms/{{form_id}}/{{version}}/{}",
                mobile_schema::PLACES_FILE
            )),
            get(places),
        )
        .route(
            &at("/submission"),
            get(preflight).head(preflight).post(submission),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            openrosa_headers,
        ))
}
