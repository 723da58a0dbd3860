"""t2igan.metrics"""
