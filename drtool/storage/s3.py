"""S3 and S3-compatible storage through boto3, the only module that imports boto3/botocore.
Uploads are multipart with equal-sized parts and are aborted on any failure."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)
from pydantic import SecretStr

from drtool.config import StorageLocation
from drtool.errors import NotFoundInStorage, StorageError, UsageError
from drtool.storage.base import (
    READ_CHUNK_BYTES,
    DerivedReads,
    ObjectInfo,
    PendingUpload,
    check_key,
    check_prefix,
    close_quietly,
    content_type,
    drain_then,
    fixed_parts,
    object_lock_applies,
    ordered_map,
    split_chunks,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

log = logging.getLogger(__name__)
T = TypeVar("T")

_NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404"}
# A conditional put that did not happen: the object changed or exists (412), is gone (404,
# If-Match), or another conditional write to it was in flight (409).
_CONDITION_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_CREDENTIALS_HINT = (
    "check storage.access_key_id / storage.secret_access_key, or the AWS credentials "
    "in the environment, and the bucket policy"
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` into ``("bucket", "some/prefix")``."""
    if not url.startswith("s3://"):
        raise UsageError(f"storage.url {url!r} is not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise UsageError(f"storage.url {url!r} names no bucket")
    if prefix:
        check_key(prefix)
    return bucket, prefix


def make_client(cfg: StorageLocation) -> S3Client:
    """A client configured from ``cfg``; credentials from cfg or boto3's default chain."""
    if (cfg.access_key_id is None) != (cfg.secret_access_key is None):
        raise UsageError(
            "storage.access_key_id and storage.secret_access_key must be set together",
            hint="set both, or neither to use the environment or instance credentials",
        )
    boto_config = BotoConfig(
        # max_attempts in drtool counts the first try, as in the AWS config file.
        retries={"mode": cfg.retry_mode, "total_max_attempts": cfg.max_attempts},
        request_checksum_calculation=cfg.request_checksum_calculation,
        response_checksum_validation=cfg.response_checksum_validation,
        s3={"addressing_style": cfg.addressing_style},
        max_pool_connections=max(10, cfg.upload_concurrency + cfg.download_concurrency + 2),
        tcp_keepalive=True,
    )
    key_id, secret = cfg.access_key_id, cfg.secret_access_key
    try:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=cfg.endpoint_url,
            region_name=cfg.region,
            config=boto_config,
            aws_access_key_id=key_id.get_secret_value() if key_id else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
        )
    except (BotoCoreError, ValueError) as exc:
        raise StorageError(f"cannot set up S3 client for {cfg.url}: {exc}") from exc
    client.meta.events.register("before-sign.s3.CopyObject", _copy_with_retention_md5)
    return client


# The MD5 of an empty body. A write with Object Lock retention must carry Content-MD5 (some
# stores, moto among them, apply that to CopyObject too); a copy's request body is empty.
_EMPTY_MD5 = base64.b64encode(hashlib.md5(b"", usedforsecurity=False).digest()).decode()


def _copy_with_retention_md5(request: Any, **_kwargs: Any) -> None:
    headers = request.headers
    if "x-amz-object-lock-mode" in headers and "Content-MD5" not in headers:
        headers["Content-MD5"] = _EMPTY_MD5


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _md5(data: bytes | bytearray) -> str:
    # Content-MD5 catches corruption in transit and is required by Object Lock buckets.
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class S3Storage(DerivedReads):
    """Objects under ``s3://bucket/prefix``; the prefix is invisible to callers."""

    def __init__(self, cfg: StorageLocation, client: S3Client | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(cfg.url)
        self.description = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._base = f"{self.prefix}/" if self.prefix else ""  # prepended to every key
        self._cfg = cfg
        self._secrets = [
            s.get_secret_value() for s in (cfg.access_key_id, cfg.secret_access_key) if s
        ]
        self.client = client if client is not None else make_client(cfg)

    # -- keys and errors --------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return self._base + check_key(key)

    def _full_prefix(self, prefix: str) -> str:
        return self._base + check_prefix(prefix)

    def _relative(self, full: str) -> str | None:
        """The caller's key for a listed object, or None for objects drtool never writes."""
        try:
            return check_key(full[len(self._base) :]) if full.startswith(self._base) else None
        except UsageError:
            log.debug("ignoring foreign object s3://%s/%s", self.bucket, full)
            return None

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._base}{key}"

    def _error(self, exc: Exception, action: str, key: str) -> StorageError:
        where = self._where(key)
        hint: str | None = None
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _NOT_FOUND_CODES:
                return NotFoundInStorage(f"{where}: no such object")
            if code == "NoSuchBucket":
                hint = f"check storage.url: bucket {self.bucket} does not exist"
            elif code == "PreconditionFailed":
                hint = "the object was overwritten while it was read; try again"
            elif code in _DENIED_CODES or status == 403:
                hint = _CREDENTIALS_HINT
            detail = f"{code or status}: {error.get('Message', '')}".rstrip(": ")
        elif isinstance(exc, NoCredentialsError):
            detail, hint = "no credentials found", _CREDENTIALS_HINT
        elif isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            endpoint = self._cfg.endpoint_url or "the S3 endpoint"
            detail = f"cannot connect to {endpoint}"
            hint = "check storage.endpoint_url, storage.region and the network"
        else:
            detail = str(exc) or type(exc).__name__
        message = f"{where}: {action} failed: {detail}"
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return StorageError(message, hint=hint)

    def _call(self, action: str, key: str, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, action, key) from exc

    def _object_args(self, key: str) -> dict[str, Any]:
        """Content-Type, and retention for the objects kept under Object Lock (base.py)."""
        args: dict[str, Any] = {"ContentType": content_type(key)}
        lock = self._cfg.object_lock
        if lock is not None and object_lock_applies(key):
            args["ObjectLockMode"] = lock.mode.upper()
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=lock.days)
        return args

    # -- writes -----------------------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        full = self._full(key)
        part_size = self._cfg.part_size
        try:
            parts = fixed_parts(chunks, part_size)
            first = next(parts)
            second = next(parts, None) if len(first) == part_size else None
        except BaseException:
            close_quietly(chunks)
            raise
        if second is None:
            self._put_object(key, full, first)
            return len(first)
        ahead = [first, second]
        del first, second  # only `ahead` may hold them, or two extra parts stay in memory
        return self._put_multipart(key, full, drain_then(ahead, parts), chunks)

    def _put_multipart(
        self, key: str, full: str, parts: Iterator[bytearray], chunks: Iterable[bytes]
    ) -> int:
        cfg = self._cfg
        started = self._call(
            "start upload of",
            key,
            self.client.create_multipart_upload,
            Key=full,
            **self._object_args(key),
        )
        upload_id = started["UploadId"]
        pool = ThreadPoolExecutor(cfg.upload_concurrency, thread_name_prefix="drtool-s3-put")
        in_flight: set[Future[tuple[int, str]]] = set()
        etags: dict[int, str] = {}
        size = 0
        try:
            number = 0
            # Not enumerate(): its cached result tuple would keep the previous part alive.
            for body in parts:
                number += 1  # noqa: SIM113
                if number > cfg.max_parts:
                    raise StorageError(
                        f"{self._where(key)}: the stream needs more than "
                        f"{cfg.max_parts} parts of {cfg.part_size} bytes; raise storage.part_size",
                        hint="raise storage.part_size (e.g. 64MiB) so that the largest "
                        "object fits in storage.max_parts parts",
                    )
                size += len(body)
                # The next part is read while `upload_concurrency` parts upload: at most
                # upload_concurrency + 1 parts are in memory.
                while len(in_flight) >= cfg.upload_concurrency:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    etags.update(future.result() for future in finished)
                in_flight.add(pool.submit(self._upload_part, key, full, upload_id, number, body))
                del body
            etags.update(future.result() for future in wait(in_flight).done)
            ordered = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
            self._call(
                "complete upload of",
                key,
                self.client.complete_multipart_upload,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": ordered},
            )
        except BaseException as exc:
            close_quietly(chunks)
            # Parts still uploading could outlive an abort, so let them finish first.
            pool.shutdown(wait=True, cancel_futures=True)
            self._abort_after_failure(key, full, upload_id, exc)
            raise
        finally:
            pool.shutdown(wait=True)
        stored = self.stat(key).size
        if stored != size:
            raise StorageError(f"{self._where(key)}: stored {stored} bytes, sent {size}")
        return size

    def _upload_part(
        self, key: str, full: str, upload_id: str, number: int, body: bytearray
    ) -> tuple[int, str]:
        response = self._call(
            f"upload part {number} of",
            key,
            self.client.upload_part,
            Key=full,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentMD5=_md5(body),
        )
        return number, response["ETag"]

    def _abort_after_failure(
        self, key: str, full: str, upload_id: str, cause: BaseException
    ) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            note = (
                f"also failed to abort the multipart upload: {self._error(exc, 'abort', key)}; "
                "`drtool prune` removes it later"
            )
            cause.add_note(note)
            log.warning("%s", note)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._put_object(key, self._full(key), data)

    def _put_object(self, key: str, full: str, data: bytes | bytearray) -> None:
        put = self.client.put_object
        args = {"Key": full, "Body": data, "ContentMD5": _md5(data), **self._object_args(key)}
        self._call("write", key, put, **args)

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        full = self._full(key)
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentMD5=_md5(data),
                **self._object_args(key),
                **condition,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _CONDITION_CODES or (etag is not None and code in _NOT_FOUND_CODES):
                return None
            raise self._error(exc, "write", key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "write", key) from exc
        return response["ETag"]

    def delete(self, key: str) -> None:
        self._call("delete", key, self.client.delete_object, Key=self._full(key))

    # -- server-side copies (storage/copy.py) ---------------------------------------------

    def can_copy_from(self, source: object) -> bool:
        """Whether this client can copy from ``source`` without streaming: S3 on the same
        endpoint with the same credentials (so the destination's principal may read it)."""
        if not isinstance(source, S3Storage):
            return False
        mine, theirs = self._cfg, source._cfg
        return (
            mine.endpoint_url == theirs.endpoint_url
            and _secret(mine.access_key_id) == _secret(theirs.access_key_id)
            and (mine.endpoint_url is not None or mine.region == theirs.region)
        )

    def copy_from(self, source: object, key: str, *, multipart_threshold: int) -> int:
        """CopyObject up to ``multipart_threshold`` bytes, UploadPartCopy above; the copy gets
        this storage's Content-Type and Object Lock retention, not the source's. The source is
        pinned by its ETag, so an object replaced meanwhile fails the copy."""
        if not isinstance(source, S3Storage):
            raise TypeError("a server-side copy needs an S3 source")
        full, src_full = self._full(key), source._full(key)
        head = source._call("stat", key, source.client.head_object, Key=src_full)
        size, etag = int(head["ContentLength"]), str(head["ETag"])
        copy_source = {"Bucket": source.bucket, "Key": src_full}
        if size <= multipart_threshold:
            self._call(
                "copy",
                key,
                self.client.copy_object,
                Key=full,
                CopySource=copy_source,
                CopySourceIfMatch=etag,
                MetadataDirective="REPLACE",
                **self._object_args(key),
            )
        else:
            self._copy_multipart(key, full, copy_source, etag, size)
        stored = self.stat(key).size
        if stored != size:
            raise StorageError(f"{self._where(key)}: copied {stored} bytes of {size}")
        return size

    def _copy_multipart(
        self, key: str, full: str, copy_source: dict[str, str], etag: str, size: int
    ) -> None:
        cfg = self._cfg
        # Every part but the last is part_size; big enough that max_parts covers the object.
        step = max(cfg.part_size, -(-size // cfg.max_parts))
        started = self._call(
            "start copy of",
            key,
            self.client.create_multipart_upload,
            Key=full,
            **self._object_args(key),
        )
        upload_id = started["UploadId"]

        def part(number: int) -> dict[str, Any]:
            first = (number - 1) * step
            last = min(first + step, size) - 1
            response = self._call(
                f"copy part {number} of",
                key,
                self.client.upload_part_copy,
                Key=full,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=copy_source,
                CopySourceIfMatch=etag,
                CopySourceRange=f"bytes={first}-{last}",
            )
            return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

        numbers = range(1, -(-size // step) + 1)
        try:
            with ThreadPoolExecutor(cfg.upload_concurrency, "drtool-s3-copy") as pool:
                parts = list(pool.map(part, numbers))
            self._call(
                "complete copy of",
                key,
                self.client.complete_multipart_upload,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException as exc:
            self._abort_after_failure(key, full, upload_id, exc)
            raise

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: str) -> Iterator[bytes]:
        full, cfg = self._full(key), self._cfg
        if cfg.download_concurrency > 1:
            head = self._call("stat", key, self.client.head_object, Key=full)
            size, step = head["ContentLength"], cfg.download_part_size
            if size > step:
                ranges = ((start, min(start + step, size) - 1) for start in range(0, size, step))
                fetch = partial(self._fetch_range, key, full, head["ETag"])
                parts = ordered_map(fetch, ranges, cfg.download_concurrency)
                return (chunk for part in parts for chunk in split_chunks(part))
        response = self._call("read", key, self.client.get_object, Key=full)
        return self._stream(key, full, response)

    def _stream(self, key: str, full: str, response: GetObjectOutputTypeDef) -> Iterator[bytes]:
        """Yield the body; a dropped connection resumes at the current offset (same ETag)."""
        size, etag, body = response["ContentLength"], response["ETag"], response["Body"]
        offset, attempt = 0, 1
        try:
            while offset < size:
                try:
                    chunk = body.read(READ_CHUNK_BYTES)
                    if not chunk:
                        raise StorageError(f"{self._where(key)}: stream ended at byte {offset}")
                except (BotoCoreError, StorageError) as exc:
                    body.close()
                    if attempt >= self._cfg.max_attempts:
                        if isinstance(exc, StorageError):
                            raise
                        raise self._error(exc, "read", key) from exc
                    attempt += 1
                    log.info("resuming read of %s at byte %d", self._where(key), offset)
                    body = self._open(key, full, Range=f"bytes={offset}-", IfMatch=etag)
                    continue
                offset += len(chunk)
                yield chunk
        finally:
            body.close()

    def _open(self, key: str, full: str, **ranged: str) -> StreamingBody:
        return self._call("read", key, self.client.get_object, Key=full, **ranged)["Body"]

    def _fetch_range(self, key: str, full: str, etag: str, span: tuple[int, int]) -> bytes:
        for attempt in range(1, self._cfg.max_attempts + 1):
            body = self._open(key, full, Range=f"bytes={span[0]}-{span[1]}", IfMatch=etag)
            try:
                data = body.read()
            except BotoCoreError as exc:
                if attempt == self._cfg.max_attempts:
                    raise self._error(exc, "read", key) from exc
                continue
            finally:
                body.close()
            if len(data) == span[1] - span[0] + 1:
                return data
        raise StorageError(f"{self._where(key)}: bytes {span[0]}-{span[1]} came back short")

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        full = self._full(key)
        response = self._call("read", key, self.client.get_object, Key=full)
        etag = response["ETag"]
        return b"".join(self._stream(key, full, response)), etag

    def stat(self, key: str) -> ObjectInfo:
        head = self._call("stat", key, self.client.head_object, Key=self._full(key))
        locked = head.get("ObjectLockRetainUntilDate")
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            modified=head["LastModified"].astimezone(UTC),
            locked_until=locked.astimezone(UTC) if locked is not None else None,
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        items = self._listing(self.client.get_paginator("list_objects_v2"), "Contents", prefix)
        return (
            ObjectInfo(key=key, size=item["Size"], modified=item["LastModified"].astimezone(UTC))
            for key, item in items
        )

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        items = self._listing(paginator, "Uploads", prefix)
        return (
            PendingUpload(
                key=key, upload_id=item["UploadId"], started=item["Initiated"].astimezone(UTC)
            )
            for key, item in items
        )

    def _listing(self, paginator: Any, field: str, prefix: str) -> Iterator[tuple[str, Any]]:
        """(key, item) for every listed entry under ``prefix``; the prefix is checked now."""
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._full_prefix(prefix))
        return self._walk_pages(pages, field, prefix)

    def _walk_pages(self, pages: Any, field: str, prefix: str) -> Iterator[tuple[str, Any]]:
        try:
            for page in pages:
                for item in page.get(field, []):
                    key = self._relative(item["Key"])
                    if key is not None:
                        yield key, item
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"list {field.lower()} under", prefix or "(all)") from exc

    def abort_upload(self, upload: PendingUpload) -> None:
        full = self._full(upload.key)
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload.upload_id
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise self._error(exc, "abort upload of", upload.key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "abort upload of", upload.key) from exc
