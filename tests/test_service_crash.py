"""kill -9 in the middle of a stream of enrolments, then restart: every acknowledged face is there, whole."""
import sqlite3
import threading

import httpx
from service_process import ServiceProcess

PHOTOS = ("obama.jpg", "obama3.jpg", "biden.jpg", "grace_hopper.jpg", "astronaut.png")


def test_kill_9_mid_enrolment_loses_no_acknowledged_face(tmp_path, faces_dir):
    gallery = tmp_path / "gallery.db"
    photos = [(name, (faces_dir / name).read_bytes()) for name in PHOTOS]
    server = ServiceProcess(gallery, tmp_path / "server.log").start()
    sent, acknowledged, lock = set(), set(), threading.Lock()
    enough, stop, failures = threading.Event(), threading.Event(), []

    def stream(worker: int):
        try:
            enrol_until_stopped(worker)
        except Exception as error:                      # reported by the main thread
            failures.append(repr(error))
            enough.set()

    def enrol_until_stopped(worker: int):
        with server.client(timeout=30) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                face_id = f"w{worker}-{i}"
                name, data = photos[(worker + i) % len(photos)]
                with lock:
                    sent.add(face_id)
                try:
                    response = client.post(f"/subjects/person {worker}/faces", data={"face_id": face_id},
                                           files={"images": (name, data)})
                except httpx.TransportError:            # the server died under this request
                    return
                assert response.status_code == 201, response.text
                with lock:
                    acknowledged.add(face_id)
                    if len(acknowledged) >= 16:
                        enough.set()

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(240) and not failures, (failures, server.log())
        server.kill()                                   # SIGKILL while other enrolments are in flight
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.kill()
    assert not failures, failures
    assert len(acknowledged) >= 16 and sent - acknowledged   # some were cut off mid-request

    restarted = ServiceProcess(gallery, tmp_path / "restarted.log").start()   # no repair step
    try:
        with restarted.client() as client:
            subjects = client.get("/subjects").json()["subjects"]
            present = {face["face_id"] for subject in subjects
                       for face in client.get(f"/subjects/{subject['name']}").json()["faces"]}
            assert acknowledged <= present <= sent
            names = [f["name"] for f in client.post("/recognize", files={"image": photos[2]}).json()["faces"]]
            assert names and names[0].startswith("person ")          # the gallery still answers
    finally:
        restarted.stop()
    with sqlite3.connect(gallery) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sizes = {row[0] for row in db.execute("SELECT length(embedding) FROM faces")}
        assert sizes == {4 * 128}                       # no face half-written
