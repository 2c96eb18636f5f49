"""Subjects and their faces: list, get, enrol (photos or embeddings), rename, delete.

Changes need the API key when one is configured.  Enrolling with client-chosen face ids is idempotent: a
retried request adds nothing twice and answers 200 instead of 201.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from fastapi import APIRouter, Depends, File, Form, Path, Response, UploadFile

from arcface_paddle.core.boxes import box_iou
from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.pipeline.faces import largest_face
from arcface_paddle.service.routers.recognition import read_upload
from arcface_paddle.service.schemas import (
    ChangeOut,
    EmbeddingsIn,
    EnrolledFace,
    EnrolOut,
    FaceRecordOut,
    RenameIn,
    SubjectDetail,
    SubjectList,
    SubjectOut,
)
from arcface_paddle.service.state import ServiceState, get_state, require_api_key
from arcface_paddle.stores import IncompatibleGalleryError, InvalidValueError, NewFace
from arcface_paddle.stores.checks import check_subject_name

router = APIRouter(prefix="/api/v1", tags=["subjects"])
changes = [Depends(require_api_key)]
SubjectName = Path(..., min_length=1, max_length=200, description="the subject's name")


@router.get("/subjects", response_model=SubjectList, summary="Every subject with its number of faces")
async def list_subjects(state: ServiceState = Depends(get_state)) -> SubjectList:
    summaries = await state.gallery(state.store.subjects)
    return SubjectList(subjects=[SubjectOut(name=s.name, faces=s.faces) for s in summaries],
                       total_faces=sum(s.faces for s in summaries))


@router.get("/subjects/{name}", response_model=SubjectDetail, summary="One subject's faces")
async def get_subject(name: str = SubjectName, state: ServiceState = Depends(get_state)) -> SubjectDetail:
    records = await state.gallery(state.store.subject_faces, name)
    return SubjectDetail(name=records[0].subject, faces=[FaceRecordOut(**r.to_dict()) for r in records])


def parse_box(text: Optional[str]) -> Optional[list[float]]:
    if text is None or not text.strip():
        return None
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
        raise InvalidValueError(f"box {text[:60]!r} must be 'x1,y1,x2,y2' with x2 > x1 and y2 > y1")
    return box


def faces_to_enrol(faces: list, name: str, all_faces: bool, box: Optional[list[float]]) -> list:
    if not faces:
        raise ToolkitError(f"{name}: no face found")
    if all_faces:
        return faces
    if box is None:
        return [largest_face(faces)]
    overlaps = box_iou([box], [face.box for face in faces])[0]
    best = int(overlaps.argmax())
    if overlaps[best] < 0.3:
        raise ToolkitError(f"{name}: no detected face overlaps the box {box}")
    return [faces[best]]


@router.post("/subjects/{name}/faces", response_model=EnrolOut, status_code=201, dependencies=changes,
             summary="Enrol the largest face (or every face, or the face at a box) of one or more photos",
             responses={200: {"description": "every face id was already enrolled (a retried request)"}})
async def enrol(response: Response, name: str = SubjectName,
                images: list[UploadFile] = File(..., description="one or more photos"),
                face_id: Optional[list[str]] = Form(None, description="one id per photo: makes retries idempotent"),
                all_faces: bool = Form(False, description="enrol every face of each photo, not only the largest"),
                box: Optional[str] = Form(None, description="x1,y1,x2,y2: enrol the face at this box"),
                state: ServiceState = Depends(get_state)) -> EnrolOut:
    name = check_subject_name(name)
    if len(images) > state.settings.max_images_per_request:
        raise InvalidValueError(f"{len(images)} photos in one request "
                                f"(at most {state.settings.max_images_per_request})")
    if face_id is not None and len(face_id) != len(images):
        raise InvalidValueError(f"{len(face_id)} face ids for {len(images)} photos (give one per photo)")
    target = parse_box(box)
    uploads = [await read_upload(image, f"image{i + 1}") for i, image in enumerate(images)]
    analysed = await asyncio.gather(*(state.engine.analyze(data, upload) for data, upload in uploads))
    new_faces, boxes = [], []
    for i, ((_, upload), (_, faces)) in enumerate(zip(uploads, analysed)):
        for k, face in enumerate(faces_to_enrol(faces, upload, all_faces, target)):
            chosen_id = None if face_id is None else (face_id[i] if k == 0 else f"{face_id[i]}.{k}")
            new_faces.append(NewFace(name, face.embedding, chosen_id, upload))
            boxes.append([round(float(v), 2) for v in face.box])
    records = await state.gallery(state.store.add, new_faces)
    if not any(record.added for record in records):
        response.status_code = 200
    return EnrolOut(subject=name, faces=[EnrolledFace(**record.to_dict(), added=record.added, box=face_box)
                                         for record, face_box in zip(records, boxes)])


@router.post("/subjects/{name}/embeddings", response_model=EnrolOut, status_code=201, dependencies=changes,
             summary="Enrol embeddings computed elsewhere with the same recognizer")
async def add_embeddings(body: EmbeddingsIn, response: Response, name: str = SubjectName,
                         state: ServiceState = Depends(get_state)) -> EnrolOut:
    if body.model_id != state.store.model_id:
        raise IncompatibleGalleryError(f"embeddings from recognizer model_id {body.model_id}, but the gallery holds "
                                       f"model_id {state.store.model_id}")
    if body.face_ids is not None and len(body.face_ids) != len(body.embeddings):
        raise InvalidValueError(f"{len(body.face_ids)} face ids for {len(body.embeddings)} embeddings")
    face_ids = body.face_ids or [None] * len(body.embeddings)
    records = await state.gallery(state.store.add, [NewFace(name, embedding, face_id, body.source)
                                                    for embedding, face_id in zip(body.embeddings, face_ids)])
    if not any(record.added for record in records):
        response.status_code = 200
    return EnrolOut(subject=check_subject_name(name),
                    faces=[EnrolledFace(**record.to_dict(), added=record.added) for record in records])


@router.patch("/subjects/{name}", response_model=ChangeOut, dependencies=changes, summary="Rename a subject")
async def rename_subject(body: RenameIn, name: str = SubjectName,
                         state: ServiceState = Depends(get_state)) -> ChangeOut:
    count = await state.gallery(state.store.rename_subject, name, body.name)
    return ChangeOut(subject=check_subject_name(body.name), faces=count)


@router.delete("/subjects/{name}", response_model=ChangeOut, dependencies=changes,
               summary="Delete a subject and all its faces")
async def delete_subject(name: str = SubjectName, state: ServiceState = Depends(get_state)) -> ChangeOut:
    count = await state.gallery(state.store.delete_subject, name)
    return ChangeOut(subject=check_subject_name(name), faces=count)


@router.delete("/faces/{face_id}", response_model=FaceRecordOut, dependencies=changes, summary="Delete one face")
async def delete_face(face_id: str = Path(..., min_length=1, max_length=128),
                      state: ServiceState = Depends(get_state)) -> FaceRecordOut:
    record = await state.gallery(state.store.delete_face, face_id)
    return FaceRecordOut(**record.to_dict())
