"""config.cache: Django's Redis cache, with one redis client kept per connection pool."""

from django.core.cache import cache, caches

from config.cache import RedisCache


def test_the_cache_is_redis_and_keeps_its_client():
    assert isinstance(caches["default"], RedisCache)
    backend = caches["default"]._cache
    assert backend.get_client("a", write=True) is backend.get_client("b", write=True)


def test_the_kept_client_behaves_like_djangos():
    key = "test-cache-add-semantics"
    cache.delete(key)
    assert cache.add(key, {"n": 1}, timeout=30) is True
    assert cache.add(key, {"n": 2}, timeout=30) is False  # add never overwrites
    assert cache.get(key) == {"n": 1}
    cache.delete(key)
    assert cache.get(key) is None
