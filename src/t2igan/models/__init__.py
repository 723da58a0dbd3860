"""t2igan.models"""
