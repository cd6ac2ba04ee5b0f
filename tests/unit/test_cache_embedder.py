import numpy as np

from chorus.cache.embedder import MiniLMEmbedder, PromptEmbedder
from chorus.db.models import EMBEDDING_DIM


def test_minilm_embeddings_are_unit_float32_rows_of_the_index_size():
    embedder: PromptEmbedder = MiniLMEmbedder()
    vectors = embedder.embed(["a red circle moves left", "a blue square spins", "a red circle moves left"])
    assert vectors.shape == (3, embedder.dim) and embedder.dim == EMBEDDING_DIM and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2]) and float(vectors[0] @ vectors[1]) < 0.9
    assert embedder.name == "all-minilm-l6-v2/32"
