import numpy as np
import pytest
import tensorflow as tf

from zoo import preprocessing
from zoo.preprocessing import (
    center_crop,
    decode_and_center_crop,
    decode_and_random_crop,
    decode_predictions,
    preprocess_input,
    random_resized_crop,
)


def encode_jpeg(image: np.ndarray) -> tf.Tensor:
    # Without chroma subsampling, decoding a window gives exactly the pixels of the
    # full decode (libjpeg's chroma upsampling differs at window borders).
    return tf.io.encode_jpeg(image, quality=95, chroma_downsampling=False)


def position_image(height: int = 257, width: int = 321) -> np.ndarray:
    """An RGB image whose red channel is the row and green channel half the column."""
    rows, cols = np.mgrid[:height, :width]
    blue = np.full((height, width), 7)
    return np.stack([np.minimum(rows, 255), cols // 2, blue], axis=-1).astype(np.uint8)


def checkerboard(size: int = 300, square: int = 3) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    board = ((rows // square + cols // square) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., np.newaxis], 3, axis=-1)


def test_center_crop_takes_the_central_part():
    # The crop of a 257x321 image is 224x224 (7/8 of 257, rounded down) at offset
    # (17, 49) (rounded up), so the bicubic resize to 224 is the identity.
    result = center_crop(position_image()).numpy()
    assert result.shape == (224, 224, 3)
    assert result.dtype == np.float32
    rows, cols = np.mgrid[:224, :224]
    np.testing.assert_allclose(result[..., 0], rows + 17, atol=1e-3)
    np.testing.assert_allclose(result[..., 1], (cols + 49) // 2, atol=1e-3)
    np.testing.assert_allclose(result[..., 2], 7, atol=1e-3)


def test_center_crop_resizes_and_keeps_values_within_0_255():
    result = center_crop(checkerboard(), size=100).numpy()
    assert result.shape == (100, 100, 3)
    # Bicubic interpolation overshoots at the sharp edges: clipped, not normalized.
    assert result.min() == 0.0 and result.max() == 255.0
    assert 0.0 < result.mean() < 255.0


def test_center_crop_of_a_batch_crops_each_image():
    images = np.stack([position_image(), checkerboard(321)[:257]])
    batch = center_crop(images).numpy()
    assert batch.shape == (2, 224, 224, 3)
    for image, result in zip(images, batch):
        np.testing.assert_allclose(result, center_crop(image).numpy(), atol=1e-4)


def test_decode_and_center_crop_matches_center_crop_of_the_decoded_jpeg():
    jpeg = encode_jpeg(position_image())
    decoded = tf.io.decode_jpeg(jpeg)
    result = decode_and_center_crop(jpeg)
    assert result.shape == (224, 224, 3) and result.dtype == tf.float32
    np.testing.assert_allclose(result.numpy(), center_crop(decoded).numpy(), atol=1e-3)


def test_decode_and_random_crop_is_random_and_within_range():
    jpeg = encode_jpeg(position_image())
    crops = [decode_and_random_crop(jpeg).numpy() for _ in range(4)]
    for crop in crops:
        assert crop.shape == (224, 224, 3) and crop.dtype == np.float32
        assert crop.min() >= 0.0 and crop.max() <= 255.0
    assert any(not np.allclose(crops[0], crop) for crop in crops[1:])


def test_a_seeded_random_crop_is_a_function_of_its_seed():
    image, seed = position_image(), tf.constant([3, 7], tf.int64)
    first = random_resized_crop(image, seed=seed).numpy()
    np.testing.assert_array_equal(random_resized_crop(image, seed=seed).numpy(), first)
    others = [random_resized_crop(image, seed=tf.constant([3, i], tf.int64)).numpy() for i in range(4)]
    assert any(not np.allclose(first, other) for other in others)
    jpeg = encode_jpeg(image)
    np.testing.assert_array_equal(decode_and_random_crop(jpeg, seed=seed).numpy(),
                                  decode_and_random_crop(jpeg, seed=seed).numpy())


def test_random_crops_fall_back_to_the_center_crop():
    # No crop of a 20x600 image has 8% of its area and an aspect ratio in [3/4, 4/3].
    image = position_image(20, 600)
    expected = center_crop(image, size=32).numpy()
    np.testing.assert_allclose(random_resized_crop(image, size=32).numpy(), expected)
    jpeg = encode_jpeg(image)
    np.testing.assert_allclose(
        decode_and_random_crop(jpeg, size=32).numpy(),
        decode_and_center_crop(jpeg, size=32).numpy(),
    )


def test_preprocess_input_single_image_numpy_and_tensor():
    image = position_image()
    result = preprocess_input(image)
    assert isinstance(result, np.ndarray)
    assert result.shape == (224, 224, 3) and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 255.0
    # No normalization: the values are the pixels of the central crop.
    assert result[0, 0, 0] == pytest.approx(17.0, abs=1e-3)

    tensor_result = preprocess_input(tf.constant(image, dtype=tf.float32))
    assert isinstance(tensor_result, tf.Tensor)
    np.testing.assert_allclose(tensor_result.numpy(), result, atol=1e-4)


def test_preprocess_input_batch():
    images = np.stack([position_image(), 255 - position_image()]).astype(np.float32)
    result = preprocess_input(images)
    assert isinstance(result, np.ndarray)
    assert result.shape == (2, 224, 224, 3) and result.dtype == np.float32
    np.testing.assert_allclose(result[1], preprocess_input(images[1]), atol=1e-4)
    assert not np.allclose(result[0], result[1])


def test_preprocess_input_inside_tf_function():
    result = tf.function(preprocess_input)(tf.zeros((1, 300, 300, 3), tf.uint8))
    assert isinstance(result, tf.Tensor) and result.shape == (1, 224, 224, 3)


@pytest.mark.parametrize(
    "shape", [(256, 320), (256, 320, 1), (2, 256, 320, 4), (1, 2, 8, 8, 3)]
)
def test_preprocess_input_rejects_bad_shapes(shape):
    with pytest.raises(ValueError) as error:
        preprocess_input(np.zeros(shape, np.uint8))
    assert str(shape) in str(error.value)
    assert "(height, width, 3)" in str(error.value)


def test_decode_predictions_of_a_one_hot():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, 0] = 1.0
    preds[1, 999] = 0.75
    decoded = decode_predictions(preds, top=3)
    assert len(decoded) == 2 and all(len(sample) == 3 for sample in decoded)
    assert decoded[0][0] == ("n01440764", "tench", 1.0)
    assert decoded[1][0] == ("n15075141", "toilet paper", 0.75)


def test_decode_predictions_sorted_top_k():
    preds = np.random.default_rng(0).random((3, 1000)).astype(np.float32)
    decoded = decode_predictions(tf.constant(preds))
    wnids = [wnid for wnid, _ in preprocessing._imagenet_classes()]
    assert len(set(wnids)) == 1000 and wnids == sorted(wnids)
    for scores, sample in zip(preds, decoded):
        best = np.argsort(scores)[::-1][:5]
        assert [wnid for wnid, _, _ in sample] == [wnids[i] for i in best]
        assert [score for _, _, score in sample] == pytest.approx(scores[best])
        assert all(isinstance(name, str) and name for _, name, _ in sample)


@pytest.mark.parametrize("shape", [(2, 10), (1000,), (1, 1000, 1)])
def test_decode_predictions_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"\(batch, 1000\)") as error:
        decode_predictions(np.zeros(shape))
    assert str(shape) in str(error.value)
