"""The EGMT network (paper Sec. III): ``EGMT(ModelConfig())(ir, vi, entities, entity_mask) -> EGMTOutput``."""

from egmt.model.network import EGMT, EGMTOutput

__all__ = ["EGMT", "EGMTOutput"]
