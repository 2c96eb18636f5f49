"""Photos in, faces out: recognise, detect, compare, embed (reads: no API key needed)."""
from __future__ import annotations

import asyncio
import base64
import os
from typing import Optional

import numpy as np
from fastapi import APIRouter, Depends, File, Query, UploadFile

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.pipeline.faces import largest_face
from arcface_paddle.service.schemas import CompareOut, DetectOut, EmbedOut, FaceOut, RecognizeOut
from arcface_paddle.service.state import ServiceState, get_state
from arcface_paddle.stores.vote import embedding_distance

router = APIRouter(prefix="/api/v1", tags=["recognition"])


def upload_name(upload: UploadFile, fallback: str) -> str:
    """The client's file name without any folder (only ever used in messages and as a face's source)."""
    name = os.path.basename((upload.filename or "").replace("\\", "/")).strip()
    return (name or fallback)[:200]


async def read_upload(upload: UploadFile, fallback: str) -> tuple[bytes, str]:
    return await upload.read(), upload_name(upload, fallback)


def face_out(face, with_embedding: bool = False) -> FaceOut:
    out = FaceOut(**face.to_dict())
    if with_embedding and face.embedding is not None:
        out.embedding = [round(float(v), 6) for v in face.embedding]
    return out


@router.post("/recognize", response_model=RecognizeOut, response_model_exclude_none=True,
             summary="Every face in a photo with its name (or unknown) and similarity")
async def recognize(image: UploadFile = File(..., description="a photo (JPEG, PNG, BMP, WebP, TIFF)"),
                    draw: bool = Query(False, description="also return the photo drawn with boxes and names"),
                    threshold: Optional[float] = Query(None, ge=-1.0, le=1.0,
                                                       description="similarity below which a face is unknown"),
                    state: ServiceState = Depends(get_state)) -> RecognizeOut:
    data, name = await read_upload(image, "image")
    pixels, faces = await state.engine.analyze(data, name)
    if faces:
        analyzer = state.engine.analyzer
        threshold = analyzer.rec_thresh if threshold is None else threshold
        matches = await state.gallery(state.store.match, np.stack([face.embedding for face in faces]), threshold,
                                      analyzer.cdd_num)
        for face, match in zip(faces, matches):
            face.name, face.similarity = match.name, match.similarity
    drawn = base64.b64encode(await state.engine.draw_jpeg(pixels, faces)).decode("ascii") if draw else None
    return RecognizeOut(image_size=[pixels.shape[1], pixels.shape[0]], faces=[face_out(face) for face in faces],
                        drawn_image=drawn)


@router.post("/detect", response_model=DetectOut, response_model_exclude_none=True,
             summary="Face boxes, keypoints and scores")
async def detect(image: UploadFile = File(...), state: ServiceState = Depends(get_state)) -> DetectOut:
    data, name = await read_upload(image, "image")
    pixels, faces = await state.engine.detect(data, name)
    return DetectOut(image_size=[pixels.shape[1], pixels.shape[0]], faces=[face_out(face) for face in faces])


@router.post("/embed", response_model=EmbedOut, response_model_exclude_none=True,
             summary="The recognizer's L2-normalised embedding of every face")
async def embed(image: UploadFile = File(...), state: ServiceState = Depends(get_state)) -> EmbedOut:
    data, name = await read_upload(image, "image")
    pixels, faces = await state.engine.analyze(data, name)
    return EmbedOut(model_id=state.engine.model_id, image_size=[pixels.shape[1], pixels.shape[0]],
                    faces=[face_out(face, with_embedding=True) for face in faces])


@router.post("/compare", response_model=CompareOut, response_model_exclude_none=True,
             summary="Similarity of the largest face in two photos")
async def compare(image1: UploadFile = File(...), image2: UploadFile = File(...),
                  threshold: Optional[float] = Query(None, ge=-1.0, le=1.0),
                  state: ServiceState = Depends(get_state)) -> CompareOut:
    uploads = [await read_upload(image1, "image1"), await read_upload(image2, "image2")]
    analysed = await asyncio.gather(*(state.engine.analyze(data, name) for data, name in uploads))
    chosen = []
    for (_, name), (_, faces) in zip(uploads, analysed):
        face = largest_face(faces)
        if face is None:
            raise ToolkitError(f"{name}: no face found")
        chosen.append(face)
    threshold = state.engine.analyzer.rec_thresh if threshold is None else threshold
    similarity = float(np.clip(chosen[0].embedding @ chosen[1].embedding, -1.0, 1.0))
    return CompareOut(similarity=round(similarity, 4), distance=round(embedding_distance(similarity), 4),
                      same_person=similarity >= threshold, threshold=threshold,
                      faces=[face_out(face) for face in chosen])
