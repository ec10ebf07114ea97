"""Configuration dataclasses that refuse attributes they do not have.

A typo in an assignment (``cfg.detector.distanse = 0.2``) would otherwise add an
attribute that nothing reads, and the image would silently stay the same.
"""
import difflib

from .errors import ConfigError


class Fields:
    """Base of the configuration dataclasses: assigning a name that is not a field raises
    :class:`ConfigError` naming the nearest field, as a typo (``distanse``) would
    otherwise add an attribute that nothing reads. Construction, ``copy``, ``pickle`` and
    ``dataclasses.replace`` assign fields only (or bypass ``__setattr__``)."""
    __slots__ = ()

    def __setattr__(self, name, value):
        if name not in type(self).__dataclass_fields__:
            raise ConfigError(no_field_message(type(self), name))
        object.__setattr__(self, name, value)


def no_field_message(cls, name):
    """One line: ``name`` is not a field of ``cls``, with the nearest field (or, for a
    configuration of sections, the section that has it)."""
    fields = list(cls.__dataclass_fields__)
    text = f"no field {name!r} in {cls.__name__}"
    close = difflib.get_close_matches(str(name), fields, n=1, cutoff=0.6)
    if close:
        return f"{text}; did you mean {close[0]!r}?"
    for section in fields:  # SimulationConfig: a field of one of its sections
        kind = cls.__dataclass_fields__[section].default_factory
        inner = getattr(kind, "__dataclass_fields__", None)
        if inner is None:
            continue
        close = difflib.get_close_matches(str(name), list(inner), n=1, cutoff=0.6)
        if close:
            return f"{text}; did you mean '{section}.{close[0]}' (a field of {kind.__name__})?"
    return f"{text} (its fields: {', '.join(fields)})"
