"""The gallery as a whole: what it is, bulk import of an ``index.bin``, export as an ``index.bin``."""
from __future__ import annotations

import os
import tempfile

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import Response

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.service.routers.recognition import upload_name
from arcface_paddle.service.schemas import GalleryOut, ImportOut
from arcface_paddle.service.state import ServiceState, get_state, require_api_key
from arcface_paddle.stores import GalleryStore
from arcface_paddle.stores.index_format import import_reference_index, load_index

router = APIRouter(prefix="/api/v1/gallery", tags=["gallery"])


@router.get("", response_model=GalleryOut, summary="Backend, size and recognizer of the gallery")
async def gallery_info(state: ServiceState = Depends(get_state)) -> GalleryOut:
    store = state.store
    subjects = await state.gallery(store.subjects)
    return GalleryOut(backend=store.backend, faces=sum(s.faces for s in subjects), subjects=len(subjects),
                      model_id=store.model_id, crop_mode=store.crop_mode, embedding_size=store.embedding_size)


def import_file(store: GalleryStore, data: bytes, name: str) -> tuple[int, int]:
    """Add the faces of an uploaded index.bin (ours, or a reference-toolkit pickle stated to come from the
    gallery's recognizer); messages name the upload, never the temporary file."""
    with tempfile.TemporaryDirectory(prefix="arcface-import-") as folder:
        path = os.path.join(folder, "upload.bin")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            if data[:1] == b"\x80":
                index = import_reference_index(path, model_id=store.model_id)
                index.crop_mode = store.crop_mode
            else:
                index = load_index(path)
        except ToolkitError as error:
            raise type(error)(str(error).replace(path, name)) from None
    index.source = name
    added = store.import_index(index)
    return added, len(store)


@router.post("/import", response_model=ImportOut, dependencies=[Depends(require_api_key)],
             summary="Add every face of an index.bin (ours or a reference-toolkit one); re-importing adds nothing")
async def import_index(index: UploadFile = File(..., description="an index.bin"),
                       state: ServiceState = Depends(get_state)) -> ImportOut:
    data, name = await index.read(), upload_name(index, "index.bin")
    added, total = await state.gallery(import_file, state.store, data, name)
    return ImportOut(added=added, faces=total)


@router.get("/export", summary="The whole gallery as an index.bin download",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
async def export_index(state: ServiceState = Depends(get_state)) -> Response:
    def export() -> bytes:
        return state.store.export_index().to_bytes()
    return Response(await state.gallery(export), media_type="application/octet-stream",
                    headers={"Content-Disposition": 'attachment; filename="index.bin"'})
