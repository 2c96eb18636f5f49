"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, installed by .ci/run).

Upload the demo photo, see three faces and their names, enrol the stranger under a name, see it recognised,
delete the subject again from the gallery list.
"""
import os
import shutil

import pytest
from service_process import API_KEY, demo_service

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")
GROUP_NAMES = ["obama", "unknown", "grace_hopper"]


def browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "needs Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium, driver


@pytest.fixture(scope="module")
def service(tmp_path_factory, repo_root):
    server = demo_service(tmp_path_factory.mktemp("browser"), repo_root)
    yield server
    server.stop()


@pytest.fixture()
def browser(tmp_path):
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_upload_recognise_enrol_and_delete_in_the_page(service, browser, repo_root):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)

    def texts(selector: str) -> list:
        """Read in one script call: the page re-renders its lists, so element handles would go stale."""
        return browser.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)",
                                      selector)

    def face_names():
        return texts("#faces .face-name")

    def subjects():
        return texts("#subjects .subject-name")

    browser.get(service.url + "/")
    wait.until(lambda _: subjects() == ["biden", "grace_hopper", "obama"])
    browser.find_element(By.ID, "api-key").send_keys(API_KEY + Keys.TAB)
    browser.find_element(By.ID, "photo").send_keys(str(repo_root / "demo" / "query" / "group.jpg"))
    wait.until(lambda _: len(face_names()) == 3)
    assert face_names() == GROUP_NAMES
    assert browser.execute_script("return document.querySelector('#canvas').width") == 1176
    assert "3 faces, 2 recognised" in browser.find_element(By.ID, "status").text

    stranger = browser.find_elements(By.CSS_SELECTOR, "#faces .face")[1]
    stranger.find_element(By.CSS_SELECTOR, ".enrol-name").send_keys("Eileen Collins")
    stranger.find_element(By.CSS_SELECTOR, ".enrol-button").click()
    wait.until(lambda _: face_names() == ["obama", "Eileen Collins", "grace_hopper"])
    assert "Eileen Collins" in subjects()
    counts = dict(zip(subjects(), texts("#subjects .subject-count")))
    assert counts["Eileen Collins"] == "1 face" and counts["obama"] == "2 faces"

    browser.find_element(By.CSS_SELECTOR, '#subjects .subject[data-name="Eileen Collins"] .delete-subject').click()
    browser.switch_to.alert.accept()
    wait.until(lambda _: subjects() == ["biden", "grace_hopper", "obama"] and face_names() == GROUP_NAMES)
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
