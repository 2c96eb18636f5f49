"""The HTTP service, for real: a server process on 127.0.0.1, a SQLite gallery file, the demo photos.

The demo gallery (obama, biden, grace_hopper) is imported at start; demo/query/group.jpg shows Obama, Eileen
Collins (not in the gallery) and Grace Hopper, left to right (demo/SOURCES.md).
"""
import base64
import io
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image
from service_process import API_KEY, demo_service

from arcface_paddle.core.images import decode_image
from arcface_paddle.stores import GalleryInfo, open_store
from arcface_paddle.stores.index_format import GalleryIndex, load_index

GROUP_NAMES = ["obama", "unknown", "grace_hopper"]


@pytest.fixture(scope="module")
def service(tmp_path_factory, repo_root):
    server = demo_service(tmp_path_factory.mktemp("service"), repo_root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def photos(repo_root, faces_dir):
    def read(path):
        return path.read_bytes()
    return {"group": read(repo_root / "demo" / "query" / "group.jpg"), "obama": read(faces_dir / "obama.jpg"),
            "obama3": read(faces_dir / "obama3.jpg"), "biden": read(faces_dir / "biden.jpg"),
            "astronaut": read(faces_dir / "astronaut.png"), "hopper": read(faces_dir / "grace_hopper.jpg")}


def assert_error(response, status: int, kind: str, *fragments: str) -> dict:
    """One JSON object {"error", "detail"} on one line, with the expected status and kind."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "\n" not in response.text.strip()
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == kind, body
    assert "Traceback" not in body["detail"] and "/tmp" not in body["detail"], body
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


def recognised_names(client, photo: bytes) -> list:
    return [face["name"] for face in client.post("/recognize", files={"image": ("g.jpg", photo)}).json()["faces"]]


def test_recognise_the_demo_photo(service, photos):
    with service.client() as client:
        response = client.post("/recognize", files={"image": ("group.jpg", photos["group"], "image/jpeg")},
                               params={"draw": "true"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["image_size"] == [1176, 408]
    assert [face["name"] for face in result["faces"]] == GROUP_NAMES
    assert [face["box"][0] for face in result["faces"]] == sorted(face["box"][0] for face in result["faces"])
    assert all(len(face["keypoints"]) == 6 for face in result["faces"])
    assert result["faces"][0]["similarity"] > 0.4 > result["faces"][1]["similarity"]
    drawn = decode_image(base64.b64decode(result["drawn_image"]), "drawn")
    assert drawn.shape == (408, 1176, 3)


def test_detect_embed_and_compare_agree(service, photos, repo_root):
    with service.client() as client:
        detected = client.post("/detect", files={"image": ("group.jpg", photos["group"])}).json()
        assert len(detected["faces"]) == 3 and "name" not in detected["faces"][0]
        embedded = {name: client.post("/embed", files={"image": (f"{name}.jpg", photos[name])}).json()
                    for name in ("obama", "obama3", "biden")}
        same = client.post("/compare", files={"image1": ("a.jpg", photos["obama"]),
                                              "image2": ("b.jpg", photos["obama3"])}).json()
        different = client.post("/compare", files={"image1": ("a.jpg", photos["obama"]),
                                                   "image2": ("b.jpg", photos["biden"])}).json()
    vectors = {name: np.asarray(result["faces"][0]["embedding"]) for name, result in embedded.items()}
    assert all(len(v) == 128 and abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors.values())
    assert embedded["obama"]["model_id"] == load_index(str(repo_root / "demo" / "index.bin")).model_id
    assert same["same_person"] and not different["same_person"]
    assert same["similarity"] == pytest.approx(float(vectors["obama"] @ vectors["obama3"]), abs=1e-3)
    assert different["similarity"] == pytest.approx(float(vectors["obama"] @ vectors["biden"]), abs=1e-3)


def test_enrol_rename_delete(service, photos):
    key = service.key()
    with service.client() as client:
        group = client.post("/recognize", files={"image": ("group.jpg", photos["group"])}).json()
        stranger = group["faces"][1]["box"]
        form = {"box": ",".join(str(v) for v in stranger), "face_id": "collins-1"}
        first = client.post("/subjects/Eileen Collins/faces", files={"images": ("group.jpg", photos["group"])},
                            data=form, headers=key)
        assert first.status_code == 201, first.text
        assert first.json()["faces"][0]["added"] and first.json()["faces"][0]["source"] == "group.jpg"
        retried = client.post("/subjects/Eileen Collins/faces", files={"images": ("group.jpg", photos["group"])},
                              data=form, headers=key)
        assert retried.status_code == 200 and not retried.json()["faces"][0]["added"]
        names = recognised_names(client, photos["group"])
        assert names == ["obama", "Eileen Collins", "grace_hopper"]
        # two photos in one request, ids chosen by the client
        two = client.post("/subjects/Eileen Collins/faces", headers=key, data={"face_id": ["collins-2", "collins-3"]},
                          files=[("images", ("astronaut.png", photos["astronaut"])),
                                 ("images", ("again.png", photos["astronaut"]))])
        assert two.status_code == 201 and [f["face_id"] for f in two.json()["faces"]] == ["collins-2", "collins-3"]
        detail = client.get("/subjects/Eileen Collins").json()
        assert [f["face_id"] for f in detail["faces"]] == ["collins-1", "collins-2", "collins-3"]
        renamed = client.patch("/subjects/Eileen Collins", json={"name": "柯林斯"}, headers=key)
        assert renamed.status_code == 200 and renamed.json() == {"subject": "柯林斯", "faces": 3}
        assert client.delete("/faces/collins-2", headers=key).json()["subject"] == "柯林斯"
        subjects = {s["name"]: s["faces"] for s in client.get("/subjects").json()["subjects"]}
        assert subjects == {"biden": 1, "grace_hopper": 1, "obama": 2, "柯林斯": 2}
        assert client.delete("/subjects/柯林斯", headers=key).json() == {"subject": "柯林斯", "faces": 2}
        names = recognised_names(client, photos["group"])
        assert names == GROUP_NAMES


def test_bad_requests_get_the_right_status_and_one_line_json(service, photos):
    key = service.key()
    bombs = {}
    for side in (8000, 20000):            # 64 and 400 Mpx declared in files of a few tens of KB
        buffer = io.BytesIO()
        Image.new("1", (side, side)).save(buffer, format="PNG")
        bombs[side] = buffer.getvalue()
    big = np.random.default_rng(0).integers(0, 256, 50 * 1024 * 1024, dtype=np.uint8).tobytes()
    with service.client() as client:
        assert_error(client.post("/recognize", files={"image": ("notes.txt", b"just some text")}), 422,
                     "invalid_input", "notes.txt: not a readable image")
        assert_error(client.post("/recognize", files={"image": ("bomb.png", bombs[8000])}), 413, "too_large",
                     "bomb.png: image of 8000×8000 pixels is larger than the 40 Mpx limit")
        assert_error(client.post("/recognize", files={"image": ("bomb.png", bombs[20000])}), 413, "too_large",
                     "bomb.png: image declares 20000×20000 pixels, more than the 100 Mpx limit")
        assert_error(client.post("/recognize", files={"image": ("big.jpg", big)}), 413, "too_large", "20 MB")

        boundary = "bigboundary0123"
        multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.jpg\"\r\n"
                     f"Content-Type: image/jpeg\r\n\r\n").encode() + big + f"\r\n--{boundary}--\r\n".encode()

        def chunks():                                   # no Content-Length: the body is counted as it arrives
            for start in range(0, len(multipart), 1 << 20):
                yield multipart[start:start + (1 << 20)]
        assert_error(client.post("/recognize", content=chunks(),
                                 headers={"content-type": f"multipart/form-data; boundary={boundary}"}),
                     413, "too_large")
        assert_error(client.post("/recognize"), 422, "invalid_request", "image")
        assert_error(client.delete("/subjects/obama"), 401, "unauthorized", "X-API-Key")
        assert_error(client.delete("/subjects/obama", headers={"X-API-Key": "wrong-key-0123456789"}), 401,
                     "unauthorized", "wrong")
        assert_error(client.post("/subjects/x/faces", files={"images": ("o.jpg", photos["obama"])},
                                 headers={"X-API-Key": API_KEY[:-1]}), 401, "unauthorized")
        assert_error(client.get("/subjects/nobody"), 404, "not_found", "'nobody' not found")
        assert_error(client.delete("/subjects/nobody", headers=key), 404, "not_found")
        assert_error(client.patch("/subjects/nobody", json={"name": "x"}, headers=key), 404, "not_found")
        assert_error(client.delete("/faces/no-such-face", headers=key), 404, "not_found")
        assert_error(client.patch("/subjects/obama", json={"name": "biden"}, headers=key), 409, "conflict")
        assert_error(client.patch("/subjects/obama", json={"nam": "x"}, headers=key), 422, "invalid_request")
        assert_error(client.post("/subjects/unknown/faces", files={"images": ("o.jpg", photos["obama"])},
                                 headers=key), 422, "invalid_value")
        assert_error(client.post("/subjects/cup/faces", headers=key, files={"images": ("cup.png", b"")}), 422,
                     "invalid_input", "empty upload")
        # a gallery built with another recogniser: refused on import and for embeddings
        foreign = GalleryIndex(["x"], np.ones((1, 128)), model_id="0000aaaa0000aaaa").to_bytes()
        assert_error(client.post("/gallery/import", files={"index": ("other.bin", foreign)}, headers=key), 422,
                     "incompatible_gallery", "0000aaaa0000aaaa")
        assert_error(client.post("/subjects/x/embeddings", json={"model_id": "0000aaaa0000aaaa",
                                                                "embeddings": [[1.0] * 128]}, headers=key),
                     422, "incompatible_gallery")
        assert_error(client.post("/gallery/import", files={"index": ("junk.bin", b"PK\x03\x04 junk")}, headers=key),
                     422, "invalid_input", "junk.bin")
        subjects = {s["name"] for s in client.get("/subjects").json()["subjects"]}
    assert subjects == {"biden", "grace_hopper", "obama"}             # nothing changed by any of it


def test_export_import_and_embeddings(service):
    key = service.key()
    with service.client() as client:
        exported = client.get("/gallery/export")
        assert exported.status_code == 200
        index_path = service.gallery + ".export.bin"
        with open(index_path, "wb") as handle:
            handle.write(exported.content)
        index = load_index(index_path)
        assert sorted(index.names) == ["biden", "grace_hopper", "obama", "obama"]
        again = client.post("/gallery/import", files={"index": ("index.bin", exported.content)}, headers=key)
        assert again.json() == {"added": 0, "faces": 4}               # the same faces: nothing added twice
        body = {"model_id": index.model_id, "embeddings": [index.features[0].tolist()], "face_ids": ["copy-1"]}
        added = client.post("/subjects/copy/embeddings", json=body, headers=key)
        assert added.status_code == 201
        assert client.post("/subjects/copy/embeddings", json=body, headers=key).status_code == 200
        info = client.get("/gallery").json()
        assert info == {"backend": "sqlite", "faces": 5, "subjects": 4, "model_id": index.model_id,
                        "crop_mode": "aligned", "embedding_size": 128}
        assert client.delete("/subjects/copy", headers=key).status_code == 200


def test_concurrent_clients_end_with_the_acknowledged_gallery(service, photos):
    """Writers on their own subjects + all on one shared face id and one shared rename + recognisers."""
    key = service.key()
    writers, barrier, errors = 4, threading.Barrier(4), []
    outcomes = {"shared_enrol": [], "shared_rename": [], "recognised": []}
    done = threading.Event()

    def writer(c: int):
        try:
            with service.client() as client:
                def enrol(subject, photo, face_id):
                    return client.post(f"/subjects/{subject}/faces", headers=key, data={"face_id": face_id},
                                       files={"images": (f"{photo}.jpg", photos[photo])})
                assert enrol(f"s{c}", "obama", f"c{c}-1").status_code == 201
                assert enrol(f"s{c}", "obama3", f"c{c}-2").status_code == 201
                assert enrol(f"s{c}", "obama", f"c{c}-1").status_code == 200
                assert client.patch(f"/subjects/s{c}", json={"name": f"t{c}"}, headers=key).status_code == 200
                assert enrol(f"t{c}", "biden", f"c{c}-3").status_code == 201
                assert client.delete(f"/faces/c{c}-2", headers=key).status_code == 200
                if c % 2 == 0:
                    assert client.delete(f"/subjects/t{c}", headers=key).json()["faces"] == 2
                barrier.wait(60)
                outcomes["shared_enrol"].append(enrol("shared", "hopper", "shared-1").status_code)
                barrier.wait(60)
                renamed = client.patch("/subjects/shared", json={"name": "shared-renamed"}, headers=key)
                outcomes["shared_rename"].append(renamed.status_code)
        except Exception as error:            # reported by the main thread
            errors.append(repr(error))

    def recogniser():
        with service.client() as client:
            while not done.is_set():
                response = client.post("/recognize", files={"image": ("group.jpg", photos["group"])})
                outcomes["recognised"].append((response.status_code, [f["name"] for f in response.json()["faces"]]))

    threads = [threading.Thread(target=writer, args=(c,)) for c in range(writers)]
    readers = [threading.Thread(target=recogniser) for _ in range(2)]
    for thread in threads + readers:
        thread.start()
    for thread in threads:
        thread.join(300)
    done.set()
    for thread in readers:
        thread.join(120)
    assert not errors, errors
    assert sorted(outcomes["shared_enrol"]) == [200, 200, 200, 201]       # one added it, the others were retries
    assert sorted(outcomes["shared_rename"]) == [200, 404, 404, 404]      # one renamed it, then it was gone
    # recognition never failed nor lost a face while the gallery changed under it
    assert outcomes["recognised"] and all(status == 200 and len(names) == 3 for status, names in outcomes["recognised"])
    with service.client() as client:
        subjects = {s["name"]: s["faces"] for s in client.get("/subjects").json()["subjects"]}
        assert subjects == {"biden": 1, "grace_hopper": 1, "obama": 2, "t1": 2, "t3": 2, "shared-renamed": 1}
        for c in (1, 3):
            assert [f["face_id"] for f in client.get(f"/subjects/t{c}").json()["faces"]] == [f"c{c}-1", f"c{c}-3"]
        for subject in ("t1", "t3", "shared-renamed"):
            client.delete(f"/subjects/{subject}", headers=key)
    with sqlite3.connect(service.gallery) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_operations_endpoints(service):
    with service.client() as client:
        client.post("/recognize", files={"image": ("x.txt", b"text")})
    import httpx
    health = httpx.get(service.url + "/health").json()
    ready = httpx.get(service.url + "/ready").json()
    metrics = httpx.get(service.url + "/metrics").text
    openapi = httpx.get(service.url + "/openapi.json").json()
    assert health == {"status": "ok"} and ready["status"] == "ready" and ready["gallery_faces"] >= 4
    assert 'arcface_requests_total{method="POST",route="/api/v1/recognize",status="422"}' in metrics
    assert 'route="/api/v1/subjects/{name}"' in metrics                  # path templates, not one series per name
    assert "arcface_recognizer_batch_faces_count" in metrics and "arcface_gallery_faces " in metrics
    assert {"/api/v1/recognize", "/api/v1/subjects/{name}/faces", "/api/v1/gallery/import"} <= set(openapi["paths"])
    assert httpx.get(service.url + "/docs").status_code == 200
    page = httpx.get(service.url + "/")
    assert page.status_code == 200 and "<canvas" in page.text


def test_service_refuses_a_gallery_built_with_another_recogniser(tmp_path):
    path = tmp_path / "other.db"
    with open_store(str(path), GalleryInfo("0123456789abcdef", "aligned", 128)) as store:
        store.add_faces("x", np.ones((1, 128)))
    done = subprocess.run([sys.executable, "-m", "arcface_paddle", "serve", "--gallery", str(path), "--port", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: gallery built with recognizer model_id "
                                                   "0123456789abcdef"), done.stderr
