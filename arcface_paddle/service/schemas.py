"""Request and response bodies of the HTTP API (pydantic models: validation and the OpenAPI page at /docs)."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, Field


class FaceOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in image pixels")
    score: float = Field(description="detector confidence")
    keypoints: Optional[list[list[float]]] = Field(None, description="6 × (x, y): eyes, nose, mouth, ear tragions")
    name: Optional[str] = Field(None, description='subject, or "unknown"; absent when not matched')
    similarity: Optional[float] = Field(None, description="cosine similarity of the match")
    embedding: Optional[list[float]] = Field(None, description="L2-normalised embedding (only from /embed)")


class RecognizeOut(BaseModel):
    image_size: list[int] = Field(description="width, height")
    faces: list[FaceOut]
    drawn_image: Optional[str] = Field(None, description="base64 JPEG with boxes and names (?draw=true)")


class DetectOut(BaseModel):
    image_size: list[int]
    faces: list[FaceOut]


class EmbedOut(BaseModel):
    model_id: str
    image_size: list[int]
    faces: list[FaceOut]


class CompareOut(BaseModel):
    similarity: float
    distance: float = Field(description="Euclidean distance of the normalised embeddings")
    same_person: bool
    threshold: float
    faces: list[FaceOut] = Field(description="the largest face of each image")


class SubjectOut(BaseModel):
    name: str
    faces: int


class SubjectList(BaseModel):
    subjects: list[SubjectOut]
    total_faces: int


class FaceRecordOut(BaseModel):
    face_id: Optional[str] = Field(description="absent in an index.bin gallery")
    subject: str
    source: str = Field(description="the uploaded file's name")
    created: float = Field(description="seconds since the epoch")


class SubjectDetail(BaseModel):
    name: str
    faces: list[FaceRecordOut]


class EnrolledFace(FaceRecordOut):
    added: bool = Field(description="false when this face id was already enrolled (a retried request)")
    box: Optional[list[float]] = None


class EnrolOut(BaseModel):
    subject: str
    faces: list[EnrolledFace]


class RenameIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="the new name")


class ChangeOut(BaseModel):
    subject: str
    faces: int = Field(description="faces renamed or deleted")


class EmbeddingsIn(BaseModel):
    model_id: str = Field(description="the recognizer that produced the embeddings (must be the gallery's)")
    embeddings: list[list[float]] = Field(min_length=1, max_length=1000)
    face_ids: Optional[list[str]] = Field(None, description="one per embedding; makes retries idempotent")
    source: str = Field("api", max_length=200)


class GalleryOut(BaseModel):
    backend: str
    faces: int
    subjects: int
    model_id: str
    crop_mode: str
    embedding_size: int


class ImportOut(BaseModel):
    added: int = Field(description="faces added (rows already imported are skipped)")
    faces: int = Field(description="faces in the gallery now")
