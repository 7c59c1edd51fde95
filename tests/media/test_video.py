import numpy as np
import pytest

from prodlens.errors import MediaError
from prodlens.media import extract_audio, sample_frames, uniform_positions, video_info
from tests.helpers import RAINBOW, write_audio_only, write_video


def test_uniform_positions_are_segment_centres():
    assert uniform_positions(10, 5) == [1, 3, 5, 7, 9]
    assert uniform_positions(3, 8) == [0, 1, 2]
    assert uniform_positions(0, 4) == []


def _dominant(img):
    arr = np.asarray(img, dtype=np.int32)
    return tuple(int(v) for v in arr[arr.shape[0] // 2, arr.shape[1] // 2])


def test_frames_are_sampled_uniformly_and_in_order(tmp_path):
    path = write_video(tmp_path / "v.mp4", RAINBOW)  # frame i has colour RAINBOW[i]
    frames = sample_frames(path, 5)
    assert len(frames) == 5 and all(f.mode == "RGB" and f.size == (64, 64) for f in frames)
    for frame, idx in zip(frames, [1, 3, 5, 7, 9]):
        got, want = _dominant(frame), RAINBOW[idx]
        assert max(abs(a - b) for a, b in zip(got, want)) < 40, (idx, got, want)


def test_asking_more_frames_than_the_clip_has(tmp_path):
    path = write_video(tmp_path / "v.mp4", RAINBOW[:3])
    assert len(sample_frames(path, 8)) == 3


def _cut(path, share: float):
    cut = path.with_name("cut.mp4")
    data = path.read_bytes()
    cut.write_bytes(data[: int(len(data) * share)])
    return cut


def test_truncated_faststart_video_keeps_its_decodable_frames(tmp_path):
    colours = RAINBOW * 3  # 30 frames; the first 80% of this file holds the first ~20 whole
    path = write_video(tmp_path / "v.mp4", colours, size=(128, 128), faststart=True)
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")
    frames = sample_frames(_cut(path, 0.8), 4, record="video/p/cut")  # wanted: frames 3, 11, 18, 26
    assert len(frames) == 3  # the frames before the cut come back; frame 26, after it, cannot
    for frame, idx in zip(frames, [3, 11, 18]):
        got, want = _dominant(frame), colours[idx]
        assert max(abs(a - b) for a, b in zip(got, want)) < 40, (idx, got, want)


def test_truncated_video_without_its_index_fails_naming_the_record(tmp_path):
    path = write_video(tmp_path / "v.mp4", RAINBOW * 3, size=(128, 128))  # moov at the end: cut away
    with pytest.raises(MediaError) as info:
        sample_frames(_cut(path, 0.6), 4, record="video/p/cut")
    assert info.value.record == "video/p/cut"


@pytest.mark.parametrize("content, words", [(b"", "empty"), (b"\x00garbage" * 100, "not a readable video")])
def test_corrupt_video(tmp_path, content, words):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=words) as info:
        sample_frames(path, 4, record="live/x/1")
    assert info.value.record == "live/x/1"


def test_audio_only_file_has_no_video_stream(tmp_path):
    with pytest.raises(MediaError, match="no video stream"):
        sample_frames(write_audio_only(tmp_path / "a.mp4"), 4)


def test_audio_is_extracted_at_16k_mono(tmp_path):
    path = write_video(tmp_path / "av.mp4", RAINBOW, audio_seconds=1.0)
    audio = extract_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.9 * 16000 <= audio.size <= 1.2 * 16000
    assert 0.1 < np.abs(audio).max() <= 1.0
    info = video_info(path)
    assert info["has_audio"] and info["width"] == 64


def test_audio_max_seconds(tmp_path):
    path = write_video(tmp_path / "av.mp4", RAINBOW * 2, audio_seconds=2.0)
    assert extract_audio(path, max_seconds=0.5).size == 8000


def test_video_without_audio_track(tmp_path):
    with pytest.raises(MediaError, match="no audio track"):
        extract_audio(write_video(tmp_path / "v.mp4", RAINBOW[:2]))
