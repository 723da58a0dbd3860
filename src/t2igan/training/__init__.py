"""t2igan.training"""
